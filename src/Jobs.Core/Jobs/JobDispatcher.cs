using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;

namespace Jobs.Core.Jobs;

/// <summary>Creates the Hangfire job that carries a row of jobs.job to a worker serving its queue.</summary>
public sealed class JobDispatcher(IBackgroundJobClient client)
{
    private const int MaxCallLength = 200;

    /// <summary>
    /// Creates one Hangfire job carrying <paramref name="jobs"/> (rows of one queue): enqueued, or scheduled for
    /// <see cref="JobRecord.RunAt"/> when that is in the future (then pass one row). Returns its id.
    /// </summary>
    public string Dispatch(IReadOnlyList<JobRecord> jobs)
    {
        var first = jobs[0];
        var call = DescribeCall(first.Function, first.Args, first.Kwargs);
        if (jobs.Count > 1) call += $" and {jobs.Count - 1} more";
        var ids = jobs.Select(j => j.Id).ToArray();
        // The queue goes on the Job too: a scheduled job or a retry is enqueued later to Job.Queue.
        var hangfireJob = Job.FromExpression<JobRunner>(runner => runner.RunAsync(call, ids, null, CancellationToken.None), first.Queue);
        IState state = first.RunAt is { } runAt && runAt > DateTime.UtcNow
            ? new ScheduledState(CeilingToSecond(DateTime.SpecifyKind(runAt, DateTimeKind.Utc)))
            : new EnqueuedState(first.Queue);
        return client.Create(hangfireJob, state);
    }

    /// <summary>A Hangfire job for one claimed job of a batch, created in <paramref name="state"/>: a retry's (scheduled) or a failure's (failed, for the dashboard).</summary>
    public string DispatchAlone(ClaimedJob job, IState state)
    {
        var call = DescribeCall(job.Function, job.Args, job.Kwargs);
        Guid[] ids = [job.Id];
        return client.Create(Job.FromExpression<JobRunner>(runner => runner.RunAsync(call, ids, null, CancellationToken.None), job.Queue), state);
    }

    /// <summary>Hangfire jobs for <paramref name="jobs"/>: per queue, pieces of at most <paramref name="maxBatch"/> rows; returns each row's Hangfire job id.</summary>
    public string[] DispatchBatches(IReadOnlyList<JobRecord> jobs, int maxBatch)
    {
        var owners = new string[jobs.Count];
        var index = jobs.Select((job, i) => (job, i)).ToArray();
        foreach (var queue in index.GroupBy(x => x.job.Queue))
            foreach (var piece in queue.Chunk(maxBatch))
            {
                var id = Dispatch(piece.Select(x => x.job).ToArray());
                foreach (var (_, i) in piece) owners[i] = id;
            }
        return owners;
    }

    public static DateTime RetryTime(TimeSpan delay) => CeilingToSecond(DateTime.UtcNow + delay);

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
