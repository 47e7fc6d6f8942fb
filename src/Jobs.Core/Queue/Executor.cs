using Hangfire;
using Hangfire.Server;

namespace Jobs.Core.Queue;

/// <summary>
/// The <b>executor</b>: the one entry point of every Hangfire job. A Hangfire job carries either rows of
/// <c>jobs.job</c> (one job, or the jobs of a round that arrived together) or one chunk of a map; the executor hands
/// the run to the feature that owns those rows (<see cref="IRunsJobs"/>, <see cref="IRunsMapChunks"/>), which claims
/// them, runs each call through the function invoker, writes the outcomes and hands back what it did not run. The
/// rows, not the Hangfire job, hold the function, arguments and options.
/// </summary>
/// <remarks>
/// Hangfire stores this type's name and each method's signature with every Hangfire job: a change to them needs an
/// entry in <see cref="FormerTypeNames"/> (Hangfire jobs stored before it must still run).
/// </remarks>
public sealed class Executor(IRunsJobs jobs, IRunsMapChunks chunks)
{
    /// <param name="call">Only for the dashboard's job list (e.g. <c>math.square(1) and 15 more</c>).</param>
    /// <param name="jobIds">The rows in jobs.job to run, in order.</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">
    /// Supplied by Hangfire: signalled when the worker shuts down, and when the Hangfire job is deleted
    /// (DELETE /jobs/{id} of a job that has its Hangfire job to itself), which the worker notices within
    /// Worker:CancellationCheckInterval.
    /// </param>
    [JobDisplayName("{0}")]
    public Task RunAsync(string call, Guid[] jobIds, PerformContext? context, CancellationToken ct) =>
        jobs.RunAsync(Run.Of(context), jobIds, ct);

    /// <param name="call">Only for the dashboard's job list.</param>
    /// <param name="mapId">The map.</param>
    /// <param name="chunk">Its chunk to run (and, when its items are quick, the chunks after it).</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">Supplied by Hangfire: the worker shuts down, or DELETE /maps/{id} deleted the Hangfire job.</param>
    [JobDisplayName("{0}")]
    public Task RunAsync(string call, Guid mapId, int chunk, PerformContext? context, CancellationToken ct) =>
        chunks.RunAsync(Run.Of(context), mapId, chunk, ct);
}

/// <summary>
/// One run of a Hangfire job: its Hangfire job (the owner its rows' claims name), the server running it, and an id of
/// its own. A Hangfire job can run twice at once — its worker cut off for longer than Worker:InvisibilityTimeout, the
/// job rescued and fetched again elsewhere — and only the run that claimed its rows last may write them.
/// </summary>
public readonly record struct Run(string HangfireJobId, string ServerId, Guid Id)
{
    internal static Run Of(PerformContext? context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new Run(context.BackgroundJob.Id, context.ServerId, Guid.CreateVersion7());
    }
}

/// <summary>Runs the rows of <c>jobs.job</c> one Hangfire job carries (the job feature).</summary>
public interface IRunsJobs
{
    Task RunAsync(Run run, Guid[] jobIds, CancellationToken ct);
}

/// <summary>Runs one chunk of a map (the map feature).</summary>
public interface IRunsMapChunks
{
    Task RunAsync(Run run, Guid mapId, int chunk, CancellationToken ct);
}
