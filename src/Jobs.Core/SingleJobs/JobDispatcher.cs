using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Jobs.Core.Database;
using Jobs.Core.Queue;

namespace Jobs.Core.SingleJobs;

/// <summary>Creates the Hangfire job that carries a row of jobs.job to a worker serving its queue.</summary>
public sealed class JobDispatcher(IBackgroundJobClient client, DatabaseClock clock)
{
    private const int MaxCallLength = 200;

    /// <summary>
    /// Creates one Hangfire job carrying <paramref name="jobs"/> (rows of one queue): enqueued, or scheduled for
    /// <see cref="JobRecord.RunAt"/> when that is in the future (then pass one row). Returns its id.
    /// </summary>
    public string Dispatch(IReadOnlyList<JobRecord> jobs)
    {
        var first = jobs[0];
        var hangfireJob = Carrying([.. jobs.Select(j => (j.Id, j.Function, j.Args, j.Kwargs))], first.Queue);
        IState state = first.RunAt is { } runAt && runAt > clock.UtcNow
            ? new ScheduledState(CeilingToSecond(DateTime.SpecifyKind(runAt, DateTimeKind.Utc)))
            : new EnqueuedState(first.Queue);
        return client.Create(hangfireJob, state);
    }

    /// <summary>
    /// The Hangfire jobs that will carry new submissions (<paramref name="ids"/>[i] is <paramref name="jobs"/>[i]'s row),
    /// created enqueued in the statement that stores them (<see cref="EnqueuedHangfireJobs"/>): per queue, pieces of at
    /// most <paramref name="maxBatch"/> rows, as <see cref="DispatchBatches"/> makes them. <c>Owner</c>[i] is the index
    /// in <c>Jobs</c> of the Hangfire job carrying row i.
    /// </summary>
    public static (int[] Owner, EnqueuedHangfireJobs.Row[] Jobs) Plan(IReadOnlyList<Guid> ids, IReadOnlyList<NewJob> jobs, int maxBatch)
    {
        var owner = new int[jobs.Count];
        var created = new List<EnqueuedHangfireJobs.Row>();
        foreach (var piece in Pieces(jobs, j => j.Queue, maxBatch))
        {
            foreach (var i in piece) owner[i] = created.Count;
            created.Add(EnqueuedHangfireJobs.For(Carrying([.. piece.Select(i => (ids[i], jobs[i].Function, jobs[i].Args, jobs[i].Kwargs))], jobs[piece[0]].Queue)));
        }
        return (owner, [.. created]);
    }

    /// <summary>The Hangfire job that runs <paramref name="rows"/> (in order) in <paramref name="queue"/>.</summary>
    private static Job Carrying(IReadOnlyList<(Guid Id, string Function, string Args, string Kwargs)> rows, string queue)
    {
        var (_, function, args, kwargs) = rows[0];
        var call = DescribeCall(function, args, kwargs);
        if (rows.Count > 1) call += $" and {rows.Count - 1} more";
        var ids = rows.Select(r => r.Id).ToArray();
        // The queue goes on the Job too: a scheduled job or a retry is enqueued later to Job.Queue.
        return Job.FromExpression<Executor>(executor => executor.RunAsync(call, ids, null, CancellationToken.None), queue);
    }

    /// <summary>Indexes of <paramref name="jobs"/> grouped by queue, in pieces of at most <paramref name="maxBatch"/>, in order.</summary>
    private static IEnumerable<int[]> Pieces<T>(IReadOnlyList<T> jobs, Func<T, string> queue, int maxBatch) =>
        Enumerable.Range(0, jobs.Count).GroupBy(i => queue(jobs[i])).SelectMany(g => g.Chunk(maxBatch));

    /// <summary>A Hangfire job for one claimed job of a batch, created in <paramref name="state"/>: a retry's (scheduled) or a failure's (failed, for the dashboard).</summary>
    public string DispatchAlone(ClaimedJob job, IState state)
    {
        return client.Create(Carrying([(job.Id, job.Function, job.Args, job.Kwargs)], job.Queue), state);
    }

    /// <summary>Hangfire jobs for <paramref name="jobs"/>: per queue, pieces of at most <paramref name="maxBatch"/> rows; returns each row's Hangfire job id.</summary>
    public string[] DispatchBatches(IReadOnlyList<JobRecord> jobs, int maxBatch)
    {
        var owners = new string[jobs.Count];
        foreach (var piece in Pieces(jobs, j => j.Queue, maxBatch))
        {
            var id = Dispatch([.. piece.Select(i => jobs[i])]);
            foreach (var i in piece) owners[i] = id;
        }
        return owners;
    }

    /// <summary>When a retry <paramref name="delay"/> from now runs, by PostgreSQL's clock (which Hangfire's scheduler reads).</summary>
    public static DateTime RetryTime(DatabaseClock clock, TimeSpan delay) => CeilingToSecond(clock.UtcNow + delay);

    /// <summary>Hangfire keeps schedule times in whole seconds, truncated: rounding up keeps "not before runAt" true.</summary>
    private static DateTime CeilingToSecond(DateTime t) =>
        t.Ticks % TimeSpan.TicksPerSecond == 0 ? t : new DateTime(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond + TimeSpan.TicksPerSecond, t.Kind);

    /// <summary>"math.pow(2, y=10)": how the dashboard lists the job. Display only; the row holds the real arguments.</summary>
    public static string DescribeCall(string function, string argsJson, string kwargsJson)
    {
        var text = new StringBuilder(function).Append('(');
        var first = true;
        using (var args = JsonDocument.Parse(argsJson))
            foreach (var arg in args.RootElement.EnumerateArray())
            {
                if (!first) text.Append(", ");
                text.Append(arg.GetRawText());
                first = false;
            }
        using (var kwargs = JsonDocument.Parse(kwargsJson))
            foreach (var kw in kwargs.RootElement.EnumerateObject())
            {
                if (!first) text.Append(", ");
                text.Append(kw.Name).Append('=').Append(kw.Value.GetRawText());
                first = false;
            }
        text.Append(')');
        return text.Length <= MaxCallLength ? text.ToString() : string.Concat(text.ToString(0, MaxCallLength - 4), "…)");
    }
}
