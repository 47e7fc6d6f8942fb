using Jobs.Core.Database;
using System.Text.Json.Nodes;
using System.Text.Json;
using Hangfire.States;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Microsoft.Extensions.Options;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// One run of one claimed job and what it comes to: the call through the <see cref="FunctionInvoker"/> (isolated, with
/// its timeout, cancel and progress), then succeeded, a retry (its delay from <see cref="RetryDelays"/>), failed for
/// good, canceled, or released (the worker stops: back uncounted). A retry or final failure of a job that shares its
/// Hangfire job gets a Hangfire job of its own, so the dashboard lists it.
/// </summary>
public sealed class JobAttempt(JobExecutionStore store, JobDispatcher dispatcher, FunctionInvoker invoker, DatabaseClock clock, IOptions<JobsOptions> options)
{
    /// <summary>Runs one claimed job to its outcome; never throws for the function's sake.</summary>
    public async Task<(JobOutcome Outcome, Exception? Failure)> RunAsync(ClaimedJob job, RunningJobs.Registration cancel, Run run, bool alone, CancellationToken ct)
    {
        var jobs = options.Value;
        // Poison-job quarantine; its claim counted no attempt (JobExecutionStore.ClaimAsync), as the function does not run.
        if (job.Crashes >= jobs.MaxWorkerCrashes)
            return Failed(job, new WorkerCrashedException(job.Function, job.Crashes), alone);
        var timeout = job.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct, cancel.Token);
        using var kwargs = JsonDocument.Parse(job.Kwargs);
        var jobContext = new JobContext(job.Id, job.Attempts,
            (fraction, message, token) => store.ReportProgressAsync(job.Id, run.HangfireJobId,
                MaybeEncodingError.Encode(new JsonObject { ["fraction"] = fraction, ["message"] = message }, "progress"), token, run.Id))
        {
            ArgumentTuples = job.Tuples,
        };
        // Isolated: a function that ignores its token (or never yields) still ends its job on cancel or timeout.
        var call = await invoker.InvokeAsync(job.Function, job.Args, kwargs.RootElement, jobContext, timeout, isolate: true, interrupt.Token);
        if (call.Interrupted)
        {
            if (cancel.IsCancellationRequested || await store.IsCancelRequestedAsync(job.Id, CancellationToken.None))
                return Canceled(job);
            // The worker is shutting down: the job goes back uncounted; Hangfire requeues its Hangfire job.
            return (Released(job), null);
        }
        if (call.Failure is not { } failure)
            return (new JobOutcome(job.Id, JobStates.Succeeded, call.Result, ResultTuples: jobContext.ResultTuples), null);
        if (job.Attempts > job.MaxRetries) return Failed(job, failure, alone);
        // RetryBaseDelay × 2^(attempt−1), capped at RetryMaxDelay: the documented schedule of a job's retries.
        var delay = RetryDelays.Exponential(job.Attempts, jobs.RetryBaseDelay, jobs.RetryMaxDelay);
        // Alone, the Hangfire job itself is rescheduled (RetryFilter); in a batch the retry gets a Hangfire job of its own.
        var owner = alone ? null : dispatcher.DispatchAlone(job, new ScheduledState(JobDispatcher.RetryTime(clock, delay)));
        return (new JobOutcome(job.Id, JobStates.Scheduled, Error(failure), delay, owner), failure);
    }

    /// <summary>A final failure. In a batch it also gets a Hangfire job of its own in the Failed state, so the dashboard lists it with its exception.</summary>
    private (JobOutcome, Exception) Failed(ClaimedJob job, Exception failure, bool alone)
    {
        var owner = alone ? null : dispatcher.DispatchAlone(job, new FailedState(new JobFailedException(job.Function, failure, retryIn: null)));
        return (new JobOutcome(job.Id, JobStates.Failed, Error(failure), NewOwner: owner), failure);
    }

    /// <summary>The worker stops before or while the job runs: it goes back to its queue uncounted.</summary>
    public static JobOutcome Released(ClaimedJob job) => new(job.Id, JobStates.Enqueued, null);

    /// <summary>Canceled (DELETE /jobs/{id}) before or while it ran.</summary>
    public static (JobOutcome Outcome, Exception Failure) Canceled(ClaimedJob job)
    {
        var canceled = new JobCanceledException(job.Function);
        return (new JobOutcome(job.Id, JobStates.Canceled, Error(canceled)), canceled);
    }

    internal static string Error(Exception e) => ErrorJson.From(e);
}
