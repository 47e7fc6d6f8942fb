using System.Text.Json;
using Jobs.Core.Configuration;
using Jobs.Core.Execution;
using Jobs.Core.Functions;
using Jobs.Core.Storage;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Jobs;

/// <summary>Why a submission was refused, already worded for the caller.</summary>
public sealed class SubmissionRefusedException(int status, string title, string detail, string? field = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string? Field { get; } = field;
}

/// <summary>Accepting jobs and waiting for them: the API side of apply_async and AsyncResult.</summary>
public sealed class JobService(
    JobStore store,
    JobDispatcher dispatcher,
    FunctionRegistry registry,
    JobCompletionListener completions,
    IOptions<JobsOptions> options,
    ILogger<JobService> logger)
{
    /// <summary>
    /// Validates, stores (durable from here on), then hands the job to Hangfire. If the API dies between the
    /// two, the workers' sweeper dispatches the row later; if Hangfire refuses, the row is removed again.
    /// </summary>
    public async Task<JobRecord> SubmitAsync(SubmitJobRequest request, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Function))
            throw new SubmissionRefusedException(400, "Missing function", "Give the name of a registered function in 'function' (GET /functions lists them).", "function");
        var queue = request.Queue ?? QueueNames.Default;
        if (!QueueNames.IsValid(queue))
            throw new SubmissionRefusedException(400, "Invalid queue", $"'{Truncate(queue)}' is not a valid queue: {QueueNames.Rule}.", "queue");
        if (!registry.TryGet(request.Function, out var function))
            throw new SubmissionRefusedException(404, "Unknown function",
                $"No function named '{Truncate(request.Function)}' is registered. GET /functions lists the registered functions.", "function");
        try
        {
            function.Validate(request.Args, request.Kwargs);
        }
        catch (ArgumentBindingException e)
        {
            throw new SubmissionRefusedException(400, "Arguments do not fit the function", e.Message, e.Parameter);
        }

        var args = request.Args.ValueKind == JsonValueKind.Array ? request.Args.GetRawText() : "[]";
        var kwargs = request.Kwargs.ValueKind == JsonValueKind.Object ? request.Kwargs.GetRawText() : "{}";
        var job = await store.InsertAsync(Guid.CreateVersion7(), function.Name, args, kwargs, queue, ct);
        try
        {
            dispatcher.Dispatch(job.Id, job.Function, job.Args, job.Kwargs, job.Queue);
        }
        catch (Exception)
        {
            await store.DeleteUndispatchedAsync(job.Id, CancellationToken.None);
            throw;
        }
        try
        {
            await store.MarkDispatchedAsync(job.Id, CancellationToken.None);
        }
        catch (Exception e)
        {
            // The job is stored and dispatched; at worst the sweeper dispatches it once more, and the
            // runner's claim makes that second dispatch a no-op. Not the caller's problem.
            logger.LogWarning(e, "Could not mark job {JobId} dispatched", job.Id);
        }
        return job;
    }

    /// <summary>The job once it is finished or <paramref name="seconds"/> have passed, whichever is first; null if unknown.</summary>
    public async Task<JobRecord?> WaitAsync(Guid id, double seconds, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(Math.Min(seconds, options.Value.MaxWaitSeconds));
        while (true)
        {
            // Register before reading, so a NOTIFY sent between the read and the wait is not missed.
            using var waiter = completions.Register(id);
            var job = await store.GetAsync(id, ct);
            var remaining = deadline - DateTime.UtcNow;
            if (job is null || JobStates.IsFinished(job.State) || remaining <= TimeSpan.Zero) return job;
            var poll = remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1);
            await Task.WhenAny(waiter.Task, Task.Delay(poll, ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    private static string Truncate(string s) => s.Length <= 100 ? s : s[..100] + "…";
}
