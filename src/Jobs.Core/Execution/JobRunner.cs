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
/// jobs.job. The row, not the Hangfire job, holds the function and arguments, and receives the outcome.
/// </summary>
public sealed class JobRunner(JobStore store, FunctionRegistry registry, IOptions<JobsOptions> options, ILogger<JobRunner> logger)
{
    /// <param name="call">Only for the dashboard's job list (see <see cref="JobDispatcher.DescribeCall"/>).</param>
    /// <param name="jobId">The row in jobs.job to run.</param>
    /// <param name="context">Supplied by Hangfire.</param>
    /// <param name="ct">Supplied by Hangfire: signalled when the worker shuts down.</param>
    [JobDisplayName("{0}")]
    public async Task RunAsync(string call, Guid jobId, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var hangfireJobId = context.BackgroundJob.Id;
        var claimed = await store.ClaimAsync(jobId, hangfireJobId, context.ServerId, ct);
        if (claimed is null)
        {
            // Another Hangfire job owns the row (a duplicate dispatch) or it already finished: nothing to do.
            logger.LogInformation("Job {JobId} is not claimable by Hangfire job {HangfireJobId}; skipping", jobId, hangfireJobId);
            return;
        }

        var retention = options.Value.Retention;
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
            result = await function.InvokeAsync(args.RootElement, kwargs.RootElement, jobContext, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The worker is shutting down: leave the row 'processing'; Hangfire requeues the job and its
            // next run (same Hangfire job) claims the row again.
            throw;
        }
        catch (Exception e)
        {
            var error = new JsonObject
            {
                ["type"] = e.GetType().FullName,
                ["message"] = e.Message,
                ["stackTrace"] = UserFrames(e.StackTrace),
            };
            await store.FailAsync(jobId, hangfireJobId, error.ToJsonString(), retention, CancellationToken.None);
            // Rethrown so the dashboard lists the job under Failed with the exception.
            throw new JobFailedException(claimed.Function, e);
        }
        await store.SucceedAsync(jobId, hangfireJobId, result?.ToJsonString(), retention, CancellationToken.None);
    }


    /// <summary>The function's own frames: what is below the reflection call into it is ours, not the user's.</summary>
    private static string UserFrames(string? stackTrace)
    {
        if (stackTrace is null) return "";
        var lines = stackTrace.Split('\n');
        var cut = Array.FindIndex(lines, l => l.Contains("at System.Reflection.", StringComparison.Ordinal)
                                           || l.Contains("at " + typeof(ClrJobFunction).FullName, StringComparison.Ordinal));
        return string.Join('\n', cut > 0 ? lines[..cut] : lines).TrimEnd();
    }
}

public sealed class UnknownFunctionException(string name)
    : Exception($"No function named '{name}' is registered in this worker. Deploy it to every worker serving the queue.");

/// <summary>What the dashboard shows for a failed job: the function's own exception as the inner one.</summary>
public sealed class JobFailedException(string function, Exception inner)
    : Exception($"{function} raised {inner.GetType().Name}: {inner.Message}", inner);
