using Hangfire;
using Hangfire.Server;
using Jobs.Core.Database;
using Microsoft.Extensions.Logging;

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
public sealed class Executor(IRunsJobs jobs, IRunsMapChunks chunks, ILogger<Executor> logger)
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
        RunAsOwnerAsync(context, run => jobs.RunAsync(run, jobIds, ct), () => $"job {string.Join(", ", jobIds)}");

    /// <param name="call">Only for the dashboard's job list.</param>
    /// <param name="mapId">The map.</param>
    /// <param name="chunk">Its chunk to run (and, when its items are quick, the chunks after it).</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">Supplied by Hangfire: the worker shuts down, or DELETE /maps/{id} deleted the Hangfire job.</param>
    [JobDisplayName("{0}")]
    public Task RunAsync(string call, Guid mapId, int chunk, PerformContext? context, CancellationToken ct) =>
        RunAsOwnerAsync(context, run => chunks.RunAsync(run, mapId, chunk, ct), () => $"map {mapId} chunk {chunk}");

    /// <summary>
    /// Runs <paramref name="body"/>; when a write of the run was refused or the run failed, and the Hangfire job is no
    /// longer this run's, ends the run without touching its state.
    /// </summary>
    /// <remarks>
    /// Hangfire changes a job's state after its run if the job is "Processing" — not "Processing by this run". A run
    /// cut off from PostgreSQL for longer than Worker:InvisibilityTimeout has lost its Hangfire job to a run elsewhere,
    /// which set it Processing afresh and claimed its rows; the late run's outcomes are refused (the run fence), but
    /// its Hangfire job's Succeeded, Scheduled or Failed would go through, Hangfire would then abort the owner's run,
    /// and the owner would hand its rows back to a Hangfire job that had ended: no run until the invariant check (found
    /// by the chaos soak on hosts). Hangfire's own answer is a <see cref="JobAbortedException"/>: no state change,
    /// and the fetch removed (the late run's fetch only: fenced by its generation). Whether the job is still this
    /// run's is Hangfire's check of its Processing state (its server and worker), one query, asked only when
    /// something was refused or failed — and asked until PostgreSQL answers (a run that gave up writing after
    /// <see cref="DatabaseRetry.Patience"/> cannot ask either; it ends as it would have without the check).
    /// </remarks>
    /// <param name="rows">What the Hangfire job carries, for the log line.</param>
    private async Task RunAsOwnerAsync(PerformContext? context, Func<Run, Task<RunEnd>> body, Func<string> rows)
    {
        var run = Run.Of(context);
        RunEnd end;
        try
        {
            end = await body(run);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            if (await TakenOverAsync(context!)) throw LeftToOwner(run, rows, e);
            throw;
        }
        if (end == RunEnd.Refused && await TakenOverAsync(context!)) throw LeftToOwner(run, rows, null);
    }

    /// <summary>
    /// Whether the Hangfire job's state is no longer this run's Processing (Hangfire's check, which also cancels the
    /// run's token), asked again while PostgreSQL does not answer; the worker stopping ends the wait (the check throws
    /// then, and Hangfire requeues the job, fenced as any give-back). Not under the run's token: Hangfire cancels that
    /// one when it finds the job aborted, and this is the question whose answer must then be "yes".
    /// </summary>
    private static Task<bool> TakenOverAsync(PerformContext context) => DatabaseRetry.RunAsync(_ =>
    {
        try
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            return Task.FromResult(false);
        }
        catch (JobAbortedException)
        {
            return Task.FromResult(true);
        }
    });

    private JobAbortedException LeftToOwner(Run run, Func<string> rows, Exception? failure)
    {
        logger.LogInformation(failure, "Hangfire job {HangfireJobId} ({Rows}) is no longer run {RunId}'s (taken over after this worker lost it, or " +
            "deleted): the run ends without changing its state", run.HangfireJobId, rows(), run.Id);
        return new JobAbortedException();
    }
}

/// <summary>How a run ended, as far as its Hangfire job goes.</summary>
public enum RunEnd
{
    /// <summary>Every write of the run was recorded (or there was nothing to write).</summary>
    Recorded,

    /// <summary>
    /// A write of the run was refused: some of its rows were no longer this run's — taken over by another run after
    /// this worker lost its fetch, canceled meanwhile, or already ended by an earlier try of the same write whose
    /// answer was lost.
    /// </summary>
    Refused,
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
    Task<RunEnd> RunAsync(Run run, Guid[] jobIds, CancellationToken ct);
}

/// <summary>Runs one chunk of a map (the map feature).</summary>
public interface IRunsMapChunks
{
    Task<RunEnd> RunAsync(Run run, Guid mapId, int chunk, CancellationToken ct);
}
