using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.Json;
using Hangfire.Server;
using Hangfire.States;
using Hangfire;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// The single Hangfire entry point: every Hangfire job calls <see cref="RunAsync"/> with the ids of rows in
/// jobs.job — one, or a batch of submissions that arrived together. The rows, not the Hangfire job, hold the
/// function, arguments and options, and receive the outcomes. A batch runs its jobs one after another in this
/// worker slot (like one of Pool's processes working through a chunk), each with its own timeout, cancellation,
/// retries and outcome; claims and outcomes are written for the whole batch at once. When a batch takes longer
/// than Worker:BatchSplitAfter, half of what is left goes back to the queue as a Hangfire job of its own, so idle
/// workers share it.
/// </summary>
public sealed class JobRunner(
    JobExecutionStore store,
    JobSubmissionStore submissions,
    JobDispatcher dispatcher,
    ICallbackQueue callbacks,
    FunctionInvoker invoker,
    RunningJobs running,
    JobsMetrics metrics,
    IOptions<JobsOptions> options,
    IOptions<WorkerOptions> worker,
    ILogger<JobRunner> logger,
    ILoggerFactory loggers)
{
    /// <summary>One line per outcome (<see cref="JobOutcomeLog"/>), in a category of its own so it can be turned down alone.</summary>
    private readonly ILogger _outcomes = loggers.CreateLogger(JobOutcomeLog.Category);

    /// <summary>Outcomes of a long batch are written at least this often, so clients see finished jobs promptly.</summary>
    private static readonly TimeSpan FlushEvery = TimeSpan.FromMilliseconds(20);

    /// <param name="call">Only for the dashboard's job list (see <see cref="JobDispatcher.DescribeCall"/>).</param>
    /// <param name="jobIds">The rows in jobs.job to run, in order.</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">
    /// Supplied by Hangfire: signalled when the worker shuts down, and when the Hangfire job is deleted
    /// (DELETE /jobs/{id} of a job that has its Hangfire job to itself), which the worker notices within
    /// Worker:CancellationCheckInterval.
    /// </param>
    [JobDisplayName("{0}")]
    public async Task RunAsync(string call, Guid[] jobIds, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var hangfireJobId = context.BackgroundJob.Id;
        var claimed = (await DatabaseRetry.RunAsync(token => store.ClaimAsync(jobIds, hangfireJobId, context.ServerId, options.Value.MaxWorkerCrashes, token), ct)).ToList();
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
            return;
        }
        var alone = jobIds.Length == 1;
        if (claimed.Count > 1 && claimed.Any(j => j.Resumed))
        {
            // The worker running this batch died. Whichever job killed it, each unfinished one now runs in a Hangfire
            // job of its own, so the crash count (poison-job quarantine) lands on the culprit alone.
            foreach (var suspect in claimed.Where(j => j.Resumed)) await HandOffAsync([suspect.Id], hangfireJobId);
            claimed.RemoveAll(j => j.Resumed);
        }

        var outcomes = new List<(ClaimedJob Job, JobOutcome Outcome, Exception? Failure)>(claimed.Count);
        var waiting = new LinkedList<ClaimedJob>(claimed);
        var batchDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Every claimed job can be canceled from now on (DELETE /jobs/{id}, noticed by the CancelWatcher): a running
        // one through its token, one still waiting its turn in the batch at once, without waiting for that turn.
        var registrations = claimed.ToDictionary(j => j.Id, j => running.Register(j.Id));
        var canceledWhileWaiting = new List<Task>();
        foreach (var job in claimed)
            registrations[job.Id].Token.Register(() =>
            {
                lock (waiting)
                {
                    if (!waiting.Remove(job)) return;
                    var canceled = Canceled(job).Outcome;
                    LogOutcome(job, canceled, null, TimeSpan.Zero, null, default);
                    canceledWhileWaiting.Add(Task.Run(() => WriteAsync(hangfireJobId, [(job, canceled, null)])));
                }
            });
        var splitter = alone ? Task.CompletedTask : ShareWhileSlowAsync(waiting, hangfireJobId, batchDone.Task, ct);
        try
        {
            var written = 0;
            var sinceWrite = Stopwatch.StartNew();
            while (Next(waiting) is { } job)
            {
                var (outcome, failure) = ct.IsCancellationRequested ? (Released(job), null)
                    : await MeasuredAsync(job, registrations[job.Id], hangfireJobId, alone, ct);
                outcomes.Add((job, outcome, failure));
                if (sinceWrite.Elapsed > FlushEvery)
                {
                    await WriteAsync(hangfireJobId, [.. outcomes.Skip(written)]);
                    written = outcomes.Count;
                    sinceWrite.Restart();
                }
            }
            batchDone.TrySetResult();
            await splitter;
            await WriteAsync(hangfireJobId, [.. outcomes.Skip(written)]);
        }
        finally
        {
            batchDone.TrySetResult();
            foreach (var registration in registrations.Values) registration.Dispose();
            Task[] pending;
            lock (waiting) pending = [.. canceledWhileWaiting];
            await Task.WhenAll(pending);
        }

        // The worker is stopping: Hangfire requeues this Hangfire job, whose next run claims what was handed back.
        if (outcomes.Any(o => o.Outcome.State == JobStates.Enqueued)) ct.ThrowIfCancellationRequested();
        if (alone && outcomes is [{ Failure: { } e, Outcome: var last }] && last.State != JobStates.Canceled)
            // Rethrown so the dashboard lists the job under Failed (or Scheduled, for a retry) with the exception.
            throw new JobFailedException(claimed[0].Function, e, retryIn: last.RetryIn);
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

    /// <summary>
    /// Every Worker:BatchSplitAfter while the batch runs, hands half of the jobs not yet started (rounded up) to a
    /// Hangfire job of their own: quick batches never split, slow ones spread over idle slots within a few rounds.
    /// </summary>
    private async Task ShareWhileSlowAsync(LinkedList<ClaimedJob> waiting, string hangfireJobId, Task batchDone, CancellationToken stopping)
    {
        // No cancellation token here: most batches end before the first tick, and that must not cost an exception.
        while (await Task.WhenAny(Task.Delay(worker.Value.BatchSplitAfter, CancellationToken.None), batchDone) != batchDone && !stopping.IsCancellationRequested)
        {
            var share = new List<Guid>();
            lock (waiting)
                for (var n = (waiting.Count + 1) / 2; n > 0; n--)
                {
                    share.Add(waiting.Last!.Value.Id);
                    waiting.RemoveLast();
                }
            if (share.Count == 0) continue;
            share.Reverse();
            try
            {
                await HandOffAsync([.. share], hangfireJobId);
            }
            catch (Exception e)
            {
                // Left 'processing' under this Hangfire job: InvariantWatch re-runs it once this one has ended.
                logger.LogWarning(e, "Could not hand {Count} jobs of Hangfire job {HangfireJobId} to another worker", share.Count, hangfireJobId);
            }
        }
    }

    /// <summary>
    /// One job's run with its telemetry: a span that continues the submitter's trace, a logging scope that puts the
    /// job id on every line logged meanwhile, the started/finished metrics and the outcome's log line.
    /// </summary>
    private async Task<(JobOutcome Outcome, Exception? Failure)> MeasuredAsync(ClaimedJob job, RunningJobs.Registration cancel, string hangfireJobId, bool alone, CancellationToken ct)
    {
        ActivityContext.TryParse(job.TraceParent, null, out var parent);
        using var activity = TelemetrySetup.Source.StartActivity($"run {job.Function}", ActivityKind.Consumer, parent);
        activity?.SetTag("jobs.job_id", job.Id).SetTag("jobs.function", job.Function).SetTag("jobs.queue", job.Queue)
            .SetTag("jobs.attempt", job.Attempts).SetTag("hangfire.job_id", hangfireJobId);
        using var scope = logger.BeginScope(new JobLogScope(job.Id, job.Function, job.Queue, parent.TraceId != default ? parent.TraceId.ToHexString() : null));
        logger.LogDebug("Running {Function}, attempt {Attempt}", job.Function, job.Attempts);
        using var busy = metrics.InFlight(job.Queue);
        metrics.Started(job.Function, job.Queue, job.Attempts == 1 && !job.Resumed ? DateTime.UtcNow - job.DueAt : null);
        var clock = Stopwatch.StartNew();
        var result = await RunOneAsync(job, cancel, hangfireJobId, alone, ct);
        activity?.SetTag("jobs.outcome", result.Outcome.State);
        if (result.Failure is { } failure && result.Outcome.State != JobStates.Canceled)
            activity?.SetStatus(ActivityStatusCode.Error, failure.Message);
        var outcome = result.Outcome.State switch
        {
            JobStates.Scheduled => "retried",
            JobStates.Enqueued => "released",
            var state => state,
        };
        metrics.Finished(job.Function, job.Queue, outcome, clock.Elapsed);
        LogOutcome(job, result.Outcome, result.Failure, clock.Elapsed, activity, parent);
        return result;
    }

    /// <summary>The outcome's one Information line (<see cref="JobOutcomeLog"/>).</summary>
    private void LogOutcome(ClaimedJob job, JobOutcome outcome, Exception? failure, TimeSpan elapsed, Activity? run, ActivityContext submitter)
    {
        if (!_outcomes.IsEnabled(LogLevel.Information)) return;
        if (run is null && submitter == default) ActivityContext.TryParse(job.TraceParent, null, out submitter);
        var (traceId, spanId) = JobOutcomeLog.TraceOf(run, submitter);
        var ms = JobOutcomeLog.Milliseconds(elapsed);
        switch (outcome.State)
        {
            case JobStates.Succeeded:
                JobOutcomeLog.Ended(_outcomes, job.Id, "succeeded", ms, job.Function, job.Queue, job.Attempts, traceId, spanId);
                break;
            case JobStates.Canceled:
                JobOutcomeLog.Ended(_outcomes, job.Id, "canceled", ms, job.Function, job.Queue, job.Attempts, traceId, spanId);
                break;
            case JobStates.Enqueued:
                // The worker is stopping: handed back unrun or unfinished, uncounted; another run follows.
                JobOutcomeLog.Ended(_outcomes, job.Id, "released", ms, job.Function, job.Queue, job.Attempts, traceId, spanId);
                break;
            case JobStates.Scheduled when failure is not null:
                // Not before: the Hangfire job is scheduled at this time (RetryFilter, or DispatchAlone in a batch), give or take the moment.
                var delay = outcome.RetryIn ?? TimeSpan.Zero;
                JobOutcomeLog.Retried(_outcomes, job.Id, "retried", ms, job.Function, job.Queue, job.Attempts,
                    ErrorJson.TypeOf(failure), JobOutcomeLog.OneLine(failure.Message), JobDispatcher.RetryTime(delay).ToString("O", System.Globalization.CultureInfo.InvariantCulture), traceId, spanId);
                break;
            case JobStates.Failed when failure is not null:
                JobOutcomeLog.Failed(_outcomes, job.Id, failure is JobTimeoutException ? "timed out" : "failed", ms, job.Function, job.Queue,
                    job.Attempts, ErrorJson.TypeOf(failure), JobOutcomeLog.OneLine(failure.Message), traceId, spanId);
                break;
        }
    }

    /// <summary>Runs one claimed job to its outcome; never throws for the function's sake.</summary>
    private async Task<(JobOutcome Outcome, Exception? Failure)> RunOneAsync(ClaimedJob job, RunningJobs.Registration cancel, string hangfireJobId, bool alone, CancellationToken ct)
    {
        var jobs = options.Value;
        // Poison-job quarantine; its claim counted no attempt (JobExecutionStore.ClaimAsync), as the function does not run.
        if (job.Crashes >= jobs.MaxWorkerCrashes)
            return Failed(job, new WorkerCrashedException(job.Function, job.Crashes), alone);
        var timeout = job.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct, cancel.Token);
        using var kwargs = JsonDocument.Parse(job.Kwargs);
        var jobContext = new JobContext(job.Id, job.Attempts,
            (fraction, message, token) => store.ReportProgressAsync(job.Id, hangfireJobId,
                MaybeEncodingError.Encode(new JsonObject { ["fraction"] = fraction, ["message"] = message }, "progress"), token))
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
        var owner = alone ? null : dispatcher.DispatchAlone(job, new ScheduledState(JobDispatcher.RetryTime(delay)));
        return (new JobOutcome(job.Id, JobStates.Scheduled, Error(failure), delay, owner), failure);
    }

    /// <summary>A final failure. In a batch it also gets a Hangfire job of its own in the Failed state, so the dashboard lists it with its exception.</summary>
    private (JobOutcome, Exception) Failed(ClaimedJob job, Exception failure, bool alone)
    {
        var owner = alone ? null : dispatcher.DispatchAlone(job, new FailedState(new JobFailedException(job.Function, failure, retryIn: null)));
        return (new JobOutcome(job.Id, JobStates.Failed, Error(failure), NewOwner: owner), failure);
    }

    private static JobOutcome Released(ClaimedJob job) => new(job.Id, JobStates.Enqueued, null);

    private static (JobOutcome Outcome, Exception Failure) Canceled(ClaimedJob job)
    {
        var canceled = new JobCanceledException(job.Function);
        return (new JobOutcome(job.Id, JobStates.Canceled, Error(canceled)), canceled);
    }

    /// <summary>Writes <paramref name="batch"/>'s outcomes (retried while PostgreSQL restarts: they must land), then queues their callbacks.</summary>
    private async Task WriteAsync(string hangfireJobId, (ClaimedJob Job, JobOutcome Outcome, Exception? Failure)[] batch)
    {
        if (batch.Length == 0) return;
        IReadOnlySet<Guid> changed;
        try
        {
            changed = await DatabaseRetry.RunAsync(token => store.FinishAsync(hangfireJobId, [.. batch.Select(o => o.Outcome)], options.Value.Retention, token));
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("22", StringComparison.Ordinal))
        {
            // PostgreSQL refused an outcome's data although MaybeEncodingError.Check passed it: write them one by one,
            // and end the refused one failed, so that no outcome is lost and no job waits for ever.
            logger.LogWarning(e, "PostgreSQL refused a batch of {Count} outcomes; writing them one by one", batch.Length);
            var each = new HashSet<Guid>();
            foreach (var (job, outcome, _) in batch)
            {
                try
                {
                    each.UnionWith(await DatabaseRetry.RunAsync(token => store.FinishAsync(hangfireJobId, [outcome], options.Value.Retention, token)));
                }
                catch (PostgresException refused) when (refused.SqlState.StartsWith("22", StringComparison.Ordinal))
                {
                    var error = Error(new MaybeEncodingError($"Error sending the outcome of {job.Function}: PostgreSQL refused it ({refused.MessageText})"));
                    each.UnionWith(await DatabaseRetry.RunAsync(token =>
                        store.FinishAsync(hangfireJobId, [new JobOutcome(job.Id, JobStates.Failed, error)], options.Value.Retention, token)));
                }
            }
            changed = each;
        }
        // Most jobs have no callback: then finishing costs no extra statement.
        foreach (var (job, outcome, _) in batch)
            if (job.CallbackUrl is not null && changed.Contains(job.Id) && JobStates.IsFinished(outcome.State))
                await callbacks.EnqueueAsync(job.Id, job.Queue, CancellationToken.None);
    }

    /// <summary>Gives claimed jobs back unrun and dispatches them in a Hangfire job of their own.</summary>
    private async Task HandOffAsync(Guid[] ids, string hangfireJobId)
    {
        var rows = await DatabaseRetry.RunAsync(token => store.HandBackAsync(ids, hangfireJobId, options.Value.MaxWorkerCrashes, token));
        if (rows.Count == 0) return;
        var owners = dispatcher.DispatchBatches(rows, rows.Count);
        await DatabaseRetry.RunAsync(token => submissions.MarkDispatchedAsync([.. rows.Select(r => r.Id)], owners, token));
    }

    private static string Error(Exception e) => ErrorJson.From(e);
}

/// <summary>What the dashboard shows for a failed attempt: the function's own exception as the inner one.</summary>
public sealed class JobFailedException(string function, Exception inner, TimeSpan? retryIn)
    : Exception($"{function} raised {inner.GetType().Name}: {inner.Message}", inner), IRetryable
{
    public TimeSpan? RetryIn { get; } = retryIn;
}
