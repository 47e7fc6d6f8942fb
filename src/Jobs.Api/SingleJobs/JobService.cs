using Jobs.Core.Database;
using System.Security.Cryptography;
using System.Text.Json;
using Hangfire;
using Jobs.Api.Notifications;
using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Core.Callbacks;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Idempotency;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Microsoft.Extensions.Options;

namespace Jobs.Api.SingleJobs;

/// <summary>Accepting, waiting for and canceling jobs: the API side of apply_async, AsyncResult and terminate.</summary>
internal sealed class JobService(
    JobQueries queries,
    JobSubmissionStore store,
    JobSubmitter submitter,
    ICallbackQueue callbackQueue,
    FunctionRegistry registry,
    KnownQueues queues,
    ChangeWaiters changes,
    IBackgroundJobClient hangfire,
    IOptions<JobsOptions> options,
    IOptionsMonitor<CallbackOptions> callbacks,
    DatabaseClock clock)
{
    private const double MaxDelaySeconds = 366 * 86_400;

    /// <summary>Validates the request, then stores and dispatches it (or returns the job its Idempotency-Key already made).</summary>
    public async Task<(JobRecord Job, bool Created)> SubmitAsync(SubmitJobRequest request, string? idempotencyKey, string? caller, CancellationToken ct)
    {
        var job = await ValidateAsync(request, ct);
        var claim = IdempotencyKeys.Claim(idempotencyKey, caller, () => RequestHash(request), options.Value.IdempotencyWindow);
        try
        {
            return await submitter.SubmitAsync(job, claim, ct);
        }
        catch (IdempotencyConflictException e)
        {
            throw IdempotencyKeys.Reused(e);
        }
    }

    /// <summary>
    /// The job once it is finished or <paramref name="seconds"/> have passed, whichever is first; null if unknown.
    /// Without its result: a response copies that from the database (<see cref="StreamedJobs"/>).
    /// </summary>
    public Task<JobRecord?> WaitAsync(Guid id, double seconds, CancellationToken ct) =>
        changes.WaitAsync(Channels.JobFinished, id, token => queries.GetAsync(id, token, withResult: false), job => JobStates.IsFinished(job.State),
            TimeSpan.FromSeconds(Math.Min(seconds, options.Value.MaxWaitSeconds)), ct);

    /// <summary>
    /// DELETE /jobs/{id}. Returns the job after the request and whether it is already canceled (false: it was
    /// running and has been signalled); null for an unknown id; throws 409 when the job had already finished.
    /// </summary>
    public async Task<(JobRecord Job, bool Canceled)?> CancelAsync(Guid id, CancellationToken ct)
    {
        var error = ErrorJson.Of(typeof(JobCanceledException), "Canceled by request before it started.");
        var outcome = await store.CancelAsync(id, error, options.Value.Retention, ct);
        if (outcome is null) return null;
        if (outcome.After is null)
            throw new RequestRefusedException(409, "Job already finished", $"Job {id} has already {outcome.Before}; there is nothing to cancel.");
        // A queued job canceled at once: deleting its Hangfire job takes it off its queue. A running one keeps its
        // Hangfire job: the worker's CancelWatcher sees cancel_requested_at within Worker:CancellationCheckInterval and
        // cancels its token; should that worker be dead, the Hangfire job's re-run finds the row canceled and ends it
        // (JobRunner) — a deleted Hangfire job would never run again, and the row would wait for ever.
        if (outcome is { After: JobStates.Canceled, HangfireJobId: { } hangfireJobId, HangfireJobCarriesOnlyThis: true }) hangfire.Delete(hangfireJobId);
        var job = (await queries.GetAsync(id, ct))!;
        if (outcome.After == JobStates.Canceled)
            await callbackQueue.EnqueueAsync(id, job.Queue, ct);
        return (job, outcome.After == JobStates.Canceled);
    }

    private async ValueTask<NewJob> ValidateAsync(SubmitJobRequest request, CancellationToken ct)
    {
        var queue = SubmissionRules.Queue(queues, request.Queue);
        var function = await SubmissionRules.FunctionAsync(registry, request.Function, ct);
        SubmissionRules.Depth(request.Args, request.Kwargs, options.Value.MaxJsonDepth);
        try
        {
            function.Validate(request.Args, request.Kwargs);
        }
        catch (ArgumentBindingException e)
        {
            throw Invalid(e.Parameter, "Arguments do not fit the function", e.Message);
        }

        if (request.DelaySeconds is { } delay && !(delay >= 0 && delay <= MaxDelaySeconds))
            throw Invalid("delaySeconds", "Invalid delaySeconds", $"delaySeconds is between 0 and {MaxDelaySeconds:0} (a year).");
        if (request.DelaySeconds is not null && request.RunAt is not null)
            throw Invalid("runAt", "Invalid runAt", "Give delaySeconds or runAt, not both.");
        // PostgreSQL's time, measured now if this API has not yet (then the job is stored knowing when it is due).
        var now = request.DelaySeconds is not null || request.RunAt is not null ? await clock.UtcNowAsync(ct) : default;
        if (request.RunAt is { } at && at > now.AddSeconds(MaxDelaySeconds))
            throw Invalid("runAt", "Invalid runAt", "runAt is at most a year from now.");
        SubmissionRules.CheckTimeout(request.TimeoutSeconds);
        if (request.Retries is < 0 or > 100)
            throw Invalid("retries", "Invalid retries", "retries is between 0 and 100.");
        if (request.CallbackUrl is { } callback) CheckCallback(callback);

        var tuples = SubmissionRules.Tuples(request.Tuples, request.Args, request.Kwargs);
        DateTime? runAt = request.DelaySeconds is { } d and > 0 ? now.AddSeconds(d) : request.RunAt?.UtcDateTime;
        return new NewJob(
            function.Name,
            request.Args.ValueKind == JsonValueKind.Array ? request.Args.GetRawText() : "[]",
            request.Kwargs.ValueKind == JsonValueKind.Object ? request.Kwargs.GetRawText() : "{}",
            queue,
            runAt,
            request.TimeoutSeconds ?? function.DefaultTimeoutSeconds,
            request.Retries ?? options.Value.DefaultRetries,
            request.CallbackUrl,
            Tuples: tuples);
    }

    private void CheckCallback(string callback)
    {
        var allowed = callbacks.CurrentValue;
        if (allowed.AllowedHosts.Length == 0)
            throw Invalid("callbackUrl", "Callbacks are disabled",
                "This service sends no callbacks: no host is allowed (Callbacks:AllowedHosts is empty). Poll GET /jobs/{id}?wait=N instead, or ask the operator to allow your host.");
        // Control characters never reach PostgreSQL: a NUL refused at Bind left Npgsql's auto-prepared statement
        // on that connection out of step, and the next submission on it failed (500) although it was stored.
        if (callback.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            throw Invalid("callbackUrl", "Invalid callbackUrl", "callbackUrl must be an absolute http or https URL; it holds a control character or white space.");
        if (!Uri.TryCreate(callback, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw Invalid("callbackUrl", "Invalid callbackUrl", "callbackUrl must be an absolute http or https URL.");
        if (!allowed.Allows(url))
            throw Invalid("callbackUrl", "Callback host not allowed",
                $"callbackUrl: {SubmissionRules.Echo(url.Authority)} is not a host this service sends callbacks to. Ask the operator to add it to Callbacks:AllowedHosts.");
    }

    /// <summary>What "the same body" means for Idempotency-Key: the request's fields, as sent.</summary>
    private static byte[] RequestHash(SubmitJobRequest request) => SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(new
    {
        request.Function,
        Args = request.Args.ValueKind == JsonValueKind.Undefined ? null : request.Args.GetRawText(),
        Kwargs = request.Kwargs.ValueKind == JsonValueKind.Undefined ? null : request.Kwargs.GetRawText(),
        request.Queue,
        request.DelaySeconds,
        request.RunAt,
        request.TimeoutSeconds,
        request.Retries,
        request.CallbackUrl,
        request.Tuples,
    }));

    private static RequestRefusedException Invalid(string field, string title, string detail) => new(400, title, detail, field);
}
