using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire;
using Hangfire.Server;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Execution;

/// <summary>
/// The single Hangfire entry point: every Hangfire job calls <see cref="RunAsync"/> with the id of a row in
/// jobs.job. The row, not the Hangfire job, holds the function, arguments and options, and receives the outcome.
/// </summary>
public sealed class JobRunner(
    JobStore store,
    FunctionRegistry registry,
    IBackgroundJobClient hangfire,
    IOptions<JobsOptions> options,
    ILogger<JobRunner> logger)
{
    /// <param name="call">Only for the dashboard's job list (see <see cref="JobDispatcher.DescribeCall"/>).</param>
    /// <param name="jobId">The row in jobs.job to run.</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">
    /// Supplied by Hangfire: signalled when the worker shuts down, and when the Hangfire job is deleted
    /// (DELETE /jobs/{id}), which the worker notices within Worker:CancellationCheckInterval.
    /// </param>
    [JobDisplayName("{0}")]
    public async Task RunAsync(string call, Guid jobId, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var hangfireJobId = context.BackgroundJob.Id;
        var claimed = await store.ClaimAsync(jobId, hangfireJobId, context.ServerId, ct);
        if (claimed is null)
        {
            // Another Hangfire job owns the row (a duplicate dispatch), or it finished or was canceled: nothing to do.
            logger.LogInformation("Job {JobId} is not claimable by Hangfire job {HangfireJobId}; skipping", jobId, hangfireJobId);
            return;
        }

        var jobs = options.Value;
        if (claimed.Crashes >= jobs.MaxWorkerCrashes)
        {
            var crashed = new WorkerCrashedException(claimed.Function, claimed.Crashes);
            await DatabaseRetry.RunAsync(token => store.FailAsync(jobId, hangfireJobId, Error(crashed), jobs.Retention, token));
            await CallbackIfAnyAsync(claimed, jobId, context);
            throw new JobFailedException(claimed.Function, crashed, retryIn: null);
        }
        var timeout = claimed.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        using var deadline = new CancellationTokenSource();
        if (timeout is { } t) deadline.CancelAfter(t);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        Task CallbackAsync() => CallbackIfAnyAsync(claimed, jobId, context);
        JsonNode? result;
        try
        {
            if (!registry.TryGet(claimed.Function, out var function))
                throw new UnknownFunctionException(claimed.Function);
            using var args = JsonDocument.Parse(claimed.Args);
            using var kwargs = JsonDocument.Parse(claimed.Kwargs);
            var jobContext = new JobContext(jobId, claimed.Attempts,
                (fraction, message, token) => store.ReportProgressAsync(jobId, hangfireJobId,
                    new JsonObject { ["fraction"] = fraction, ["message"] = message }.ToJsonString(), token));
            // On a pool thread, and awaited with WaitAsync: a function that ignores its token (or never yields)
            // still ends its job on cancel or timeout; its thread runs on until it returns, result discarded.
            var argsRoot = args.RootElement;
            var kwargsRoot = kwargs.RootElement;
            result = await Task.Run(() => function.InvokeAsync(argsRoot, kwargsRoot, jobContext, linked.Token), linked.Token).WaitAsync(linked.Token);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            if (await store.IsCancelRequestedAsync(jobId, CancellationToken.None))
            {
                await DatabaseRetry.RunAsync(token => store.FinishCanceledAsync(jobId, hangfireJobId,
                    Error(new JobCanceledException(claimed.Function)), jobs.Retention, token));
                await CallbackAsync();
                return;
            }
            // The worker is shutting down: hand the row back uncounted; Hangfire requeues the job and its next
            // run (same Hangfire job) claims the row again.
            await DatabaseRetry.RunAsync(token => store.ReleaseAsync(jobId, hangfireJobId, token));
            throw;
        }
        catch (Exception e)
        {
            var failure = deadline.IsCancellationRequested ? new JobTimeoutException(claimed.Function, timeout!.Value) : e;
            var error = Error(failure);
            if (claimed.Attempts <= claimed.MaxRetries)
            {
                var delay = Backoff(claimed.Attempts, jobs);
                await DatabaseRetry.RunAsync(token => store.ScheduleRetryAsync(jobId, hangfireJobId, error, delay, token));
                throw new JobFailedException(claimed.Function, failure, retryIn: delay);
            }
            await DatabaseRetry.RunAsync(token => store.FailAsync(jobId, hangfireJobId, error, jobs.Retention, token));
            await CallbackAsync();
            // Rethrown so the dashboard lists the job under Failed with the exception.
            throw new JobFailedException(claimed.Function, failure, retryIn: null);
        }
        // The outcome must land even if PostgreSQL is restarting right now.
        await DatabaseRetry.RunAsync(token => store.SucceedAsync(jobId, hangfireJobId, result?.ToJsonString(), jobs.Retention, token));
        await CallbackAsync();
    }

    /// <summary>Most jobs have no callback: then finishing costs no extra statement.</summary>
    private Task CallbackIfAnyAsync(ClaimedJob claimed, Guid jobId, PerformContext context) => claimed.CallbackUrl is null
        ? Task.CompletedTask
        : CallbackSender.EnqueueAsync(store, hangfire, jobId, context.BackgroundJob.Job.Queue ?? QueueNames.Default, CancellationToken.None);

    /// <summary>RetryBaseDelay × 2^(attempt−1), capped at RetryMaxDelay.</summary>
    public static TimeSpan Backoff(int attempt, JobsOptions options)
    {
        var delay = options.RetryBaseDelay * Math.Pow(2, Math.Min(attempt - 1, 30));
        return delay < options.RetryMaxDelay ? delay : options.RetryMaxDelay;
    }

    private static string Error(Exception e) => ErrorJson.From(e);
}

public sealed class UnknownFunctionException(string name)
    : Exception($"No function named '{name}' is registered in this worker. Deploy it to every worker serving the queue.");

/// <summary>The error of a job that ran longer than its timeoutSeconds.</summary>
public sealed class JobTimeoutException(string function, TimeSpan timeout)
    : Exception($"{function} did not finish within its timeout of {timeout.TotalSeconds:0.###} s and was canceled.");

/// <summary>The error of a job whose worker process died while running it, too many times (poison-job quarantine).</summary>
public sealed class WorkerCrashedException(string function, int crashes)
    : Exception($"The worker process running {function} died while running it {crashes} times (Jobs:MaxWorkerCrashes); the job is not run again.");

/// <summary>The error of a job canceled through DELETE /jobs/{id}.</summary>
public sealed class JobCanceledException(string function)
    : Exception($"{function} was canceled by request.");

/// <summary>What the dashboard shows for a failed attempt: the function's own exception as the inner one.</summary>
public sealed class JobFailedException(string function, Exception inner, TimeSpan? retryIn)
    : Exception($"{function} raised {inner.GetType().Name}: {inner.Message}", inner), IRetryable
{
    public TimeSpan? RetryIn { get; } = retryIn;
}
