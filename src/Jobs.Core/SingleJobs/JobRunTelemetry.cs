using Jobs.Core.Database;
using System.Diagnostics;
using Jobs.Core.Functions;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// How a job's run is seen from outside: a span that continues the submitter's trace, a logging scope that puts the
/// job id on every line logged meanwhile, the started/finished metrics, and the outcome's one line
/// (<see cref="JobOutcomeLog"/>, in a category of its own so it can be turned down alone).
/// </summary>
public sealed class JobRunTelemetry(JobsMetrics metrics, DatabaseClock clock, ILogger<JobRunner> logger, ILoggerFactory loggers)
{
    private readonly ILogger _outcomes = loggers.CreateLogger(JobOutcomeLog.Category);

    /// <summary>
    /// Runs <paramref name="run"/>, one job's run, with its telemetry: a span that continues the submitter's trace, a logging scope that puts the
    /// job id on every line logged meanwhile, the started/finished metrics and the outcome's log line.
    /// </summary>
    public async Task<(JobOutcome Outcome, Exception? Failure)> MeasureAsync(ClaimedJob job, string hangfireJobId, Func<Task<(JobOutcome Outcome, Exception? Failure)>> run)
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
        var result = await run();
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
    public void LogOutcome(ClaimedJob job, JobOutcome outcome, Exception? failure, TimeSpan elapsed, Activity? run, ActivityContext submitter)
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
                    ErrorJson.TypeOf(failure), JobOutcomeLog.OneLine(failure.Message), JobDispatcher.RetryTime(clock, delay).ToString("O", System.Globalization.CultureInfo.InvariantCulture), traceId, spanId);
                break;
            case JobStates.Failed when failure is not null:
                JobOutcomeLog.Failed(_outcomes, job.Id, failure is JobTimeoutException ? "timed out" : "failed", ms, job.Function, job.Queue,
                    job.Attempts, ErrorJson.TypeOf(failure), JobOutcomeLog.OneLine(failure.Message), traceId, spanId);
                break;
        }
    }
}
