using System.Diagnostics;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Runs the rows of jobs.job one Hangfire job carries, for the <see cref="Executor"/> — one job, or a batch of
/// submissions that arrived together. The rows, not the Hangfire job, hold the function, arguments and options, and
/// receive the outcomes. A batch runs its jobs one after another in this worker slot (like one of Pool's processes
/// working through a chunk), each with its own timeout, cancellation, retries and outcome: this type claims them,
/// wires their cancels (<see cref="RunningJobs"/>) and keeps the order; each run is a <see cref="JobAttempt"/> seen through
/// <see cref="JobRunTelemetry"/>, outcomes are written for the whole batch at once by <see cref="JobOutcomeWriter"/>, and
/// <see cref="BatchSharing"/> hands half of what is left to another Hangfire job when the batch is slow.
/// </summary>
public sealed class JobRunner(
    JobExecutionStore store,
    JobAttempt attempt,
    JobRunTelemetry telemetry,
    JobOutcomeWriter writer,
    BatchSharing sharing,
    RunningJobs running,
    IOptions<JobsOptions> options,
    ILogger<JobRunner> logger) : IRunsJobs
{
    /// <summary>Outcomes of a long batch are written at least this often, so clients see finished jobs promptly.</summary>
    private static readonly TimeSpan FlushEvery = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Claims <paramref name="jobIds"/> for <paramref name="run"/> and runs them in order (see the class summary).
    /// Returns <see cref="RunEnd.Refused"/> when an outcome was not recorded (the row no longer this run's).
    /// </summary>
    public async Task<RunEnd> RunAsync(Run run, Guid[] jobIds, CancellationToken ct)
    {
        var hangfireJobId = run.HangfireJobId;
        var claimed = (await DatabaseRetry.RunAsync(token => store.ClaimAsync(jobIds, hangfireJobId, run.ServerId, options.Value.MaxWorkerCrashes, token, run.Id), ct)).ToList();
        if (claimed.Count < jobIds.Length)
        {
            // A row canceled while its run was lost (its worker died, or its outcome could not be written) is not
            // claimable again: end it here, or it would wait for ever.
            var rest = jobIds.Except(claimed.Select(j => j.Id)).ToArray();
            await DatabaseRetry.RunAsync(token => store.EndCanceledAsync(rest, hangfireJobId, options.Value.Retention, token), ct);
        }
        if (claimed.Count == 0)
        {
            // Another Hangfire job owns the rows (a duplicate dispatch), or they finished or were canceled: nothing to do.
            logger.LogInformation("No job of Hangfire job {HangfireJobId} is claimable; skipping", hangfireJobId);
            return RunEnd.Recorded;
        }
        var alone = jobIds.Length == 1;
        if (claimed.Count > 1 && claimed.Any(j => j.Resumed))
        {
            // The worker running this batch died. Whichever job killed it, each unfinished one now runs in a Hangfire
            // job of its own, so the crash count (poison-job quarantine) lands on the culprit alone.
            foreach (var suspect in claimed.Where(j => j.Resumed)) await sharing.HandOffAsync([suspect.Id], run);
            claimed.RemoveAll(j => j.Resumed);
        }

        var outcomes = new List<(ClaimedJob Job, JobOutcome Outcome, Exception? Failure)>(claimed.Count);
        var waiting = new LinkedList<ClaimedJob>(claimed);
        var batchDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Every claimed job can be canceled from now on (DELETE /jobs/{id}, noticed by the CancelWatcher): a running
        // one through its token, one still waiting its turn in the batch at once, without waiting for that turn.
        var registrations = claimed.ToDictionary(j => j.Id, j => running.Register(j.Id));
        var canceledWhileWaiting = new List<Task<bool>>();
        foreach (var job in claimed)
            registrations[job.Id].Token.Register(() =>
            {
                lock (waiting)
                {
                    if (!waiting.Remove(job)) return;
                    var canceled = JobAttempt.Canceled(job).Outcome;
                    telemetry.LogOutcome(job, canceled, null, TimeSpan.Zero, null, default);
                    canceledWhileWaiting.Add(Task.Run(() => writer.WriteAsync(run, [(job, canceled, null)])));
                }
            });
        var splitter = alone ? Task.CompletedTask : sharing.ShareWhileSlowAsync(waiting, run, batchDone.Task, ct);
        var recorded = true;
        try
        {
            var written = 0;
            var sinceWrite = Stopwatch.StartNew();
            while (Next(waiting) is { } job)
            {
                var (outcome, failure) = ct.IsCancellationRequested ? (JobAttempt.Released(job), null)
                    : await telemetry.MeasureAsync(job, hangfireJobId, () => attempt.RunAsync(job, registrations[job.Id], run, alone, ct));
                outcomes.Add((job, outcome, failure));
                if (sinceWrite.Elapsed > FlushEvery)
                {
                    recorded &= await writer.WriteAsync(run, [.. outcomes.Skip(written)]);
                    written = outcomes.Count;
                    sinceWrite.Restart();
                }
            }
            batchDone.TrySetResult();
            await splitter;
            recorded &= await writer.WriteAsync(run, [.. outcomes.Skip(written)]);
        }
        finally
        {
            batchDone.TrySetResult();
            foreach (var registration in registrations.Values) registration.Dispose();
            Task<bool>[] pending;
            lock (waiting) pending = [.. canceledWhileWaiting];
            recorded &= (await Task.WhenAll(pending)).All(r => r);
        }

        // The worker is stopping: Hangfire requeues this Hangfire job, whose next run claims what was handed back.
        if (outcomes.Any(o => o.Outcome.State == JobStates.Enqueued)) ct.ThrowIfCancellationRequested();
        if (alone && outcomes is [{ Failure: { } e, Outcome: var last }] && last.State != JobStates.Canceled)
            // Rethrown so the dashboard lists the job under Failed (or Scheduled, for a retry) with the exception.
            throw new JobFailedException(claimed[0].Function, e, retryIn: last.RetryIn);
        return recorded ? RunEnd.Recorded : RunEnd.Refused;
    }

    private static ClaimedJob? Next(LinkedList<ClaimedJob> waiting)
    {
        lock (waiting)
        {
            if (waiting.First is not { } first) return null;
            waiting.RemoveFirst();
            return first.Value;
        }
    }
}

/// <summary>What the dashboard shows for a failed attempt: the function's own exception as the inner one.</summary>
public sealed class JobFailedException(string function, Exception inner, TimeSpan? retryIn)
    : Exception($"{function} raised {inner.GetType().Name}: {inner.Message}", inner), IRetryable
{
    public TimeSpan? RetryIn { get; } = retryIn;
}
