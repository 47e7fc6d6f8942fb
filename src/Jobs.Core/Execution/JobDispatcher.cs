using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Jobs.Core.Storage;

namespace Jobs.Core.Execution;

/// <summary>Creates the Hangfire job that carries a row of jobs.job to a worker serving its queue.</summary>
public sealed class JobDispatcher(IBackgroundJobClient client)
{
    private const int MaxCallLength = 200;

    /// <summary>Enqueues the row's Hangfire job, or schedules it for <see cref="JobRecord.RunAt"/>; returns its id.</summary>
    public string Dispatch(JobRecord job)
    {
        var call = DescribeCall(job.Function, job.Args, job.Kwargs);
        // The queue goes on the Job too: a scheduled job or a retry is enqueued later to Job.Queue.
        var hangfireJob = Job.FromExpression<JobRunner>(runner => runner.RunAsync(call, job.Id, null, CancellationToken.None), job.Queue);
        IState state = job.RunAt is { } runAt && runAt > DateTime.UtcNow
            ? new ScheduledState(CeilingToSecond(DateTime.SpecifyKind(runAt, DateTimeKind.Utc)))
            : new EnqueuedState(job.Queue);
        return client.Create(hangfireJob, state);
    }

    /// <summary>Enqueues the Hangfire job of one chunk of a map; returns its id.</summary>
    public string DispatchChunk(Guid mapId, int chunk, string function, string queue, int firstIndex, int endIndex)
    {
        var call = $"{function} map {mapId.ToString()[^12..]} items {firstIndex}–{endIndex - 1}";
        var hangfireJob = Job.FromExpression<MapChunkRunner>(runner => runner.RunAsync(call, mapId, chunk, null, CancellationToken.None), queue);
        return client.Create(hangfireJob, new EnqueuedState(queue));
    }

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
