using Jobs.Api.Notifications;
using Jobs.Api.OpenApi;
using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Api.Security;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Jobs.Api.SingleJobs;

/// <summary>/jobs: apply_async, apply, AsyncResult.get/wait/ready/successful.</summary>
internal static class JobsApi
{
    /// <summary>The /jobs endpoints' services; needs <c>AddJobsCore</c> (Program.cs).</summary>
    public static IServiceCollection AddJobsApi(this IServiceCollection services)
    {
        // Python functions live workers offer, read in the background.
        services.AddSingleton<OfferedFunctions>();
        services.AddSingleton<IOfferedFunctions>(sp => sp.GetRequiredService<OfferedFunctions>());
        services.AddHostedService(sp => sp.GetRequiredService<OfferedFunctions>());
        // The queues submissions may name, read in the background (POST /jobs, /maps and /schedules refuse others).
        services.AddSingleton<KnownQueues>();
        services.AddHostedService(sp => sp.GetRequiredService<KnownQueues>());
        services.AddSingleton<JobService>();
        services.AddChangeWaiters();
        return services;
    }

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/jobs").WithTags("Jobs").RequireApiKey().WithRefusalsAsProblems();

        jobs.MapPost("/", Submit)
            .WithName("SubmitJob")
            .WithSummary("Submit a job (apply_async; with ?wait=N, apply)")
            .WithDescription("Stores the job durably in PostgreSQL, then queues it for the workers. The response is sent only " +
                             "after the job is stored. With ?wait=N the request waits up to N seconds (capped by " +
                             "Jobs:MaxWaitSeconds) and answers 200 with the finished job, else 202. With an Idempotency-Key " +
                             "header, a repeat of the same request returns the first job (header Idempotent-Replayed: true) " +
                             "and the same key with a different request is refused with 422. A job for a queue no live worker " +
                             "serves is accepted with a Warning header (199 jobs \"No live worker serves queue '…'\"); GET /queues shows it too.")
            .Accepts<SubmitJobRequest>("application/json")
            .WithRequestExample("""{ "function": "math.square", "args": [7], "kwargs": {}, "queue": "default", "timeoutSeconds": 60, "retries": 2 }""")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapPost("/batch", SubmitBatch)
            .WithName("SubmitJobs")
            .WithSummary("Submit many jobs in one request (a pool's many apply_async calls)")
            .WithDescription("Each job is checked, stored and queued as POST /jobs would, independently of the others, and " +
                             "the jobs are committed together: many small submissions cost one round trip. The answer lists, " +
                             "in request order, each job's JobView or the problem that refused it (then nothing was stored " +
                             $"for that one). At most {MaxBatch} jobs per request; no Idempotency-Key.")
            .Accepts<SubmitJobsRequest>("application/json")
            .WithRequestExample("""{ "jobs": [ { "function": "math.square", "args": [1] }, { "function": "math.square", "args": [2] } ] }""")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        jobs.MapDelete("/{id:guid}", Cancel)
            .WithName("CancelJob")
            .WithSummary("Cancel a job (AsyncResult's share of Pool.terminate)")
            .WithDescription("A scheduled or queued job is canceled at once (200). A running job's CancellationToken is " +
                             "signalled (202); it ends 'canceled' when the function stops, within about a second if it " +
                             "observes the token. 409 when the job already finished.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapPost("/{id:guid}/retry", Retry)
            .WithName("RetryJob")
            .WithSummary("Run a failed or canceled job again (admin key)")
            .WithDescription("Puts the job back in its queue as it was submitted: the same id, function, arguments and options; " +
                             "its result, error and times are cleared and its attempts go on (the next run is attempt n + 1, and " +
                             "its retries count from there: a job whose retries were spent gets one more run). Answers 202 with the " +
                             "job, enqueued, and Location. 409 when the job is not failed or canceled (still waiting, running, or " +
                             "succeeded). Like POST /jobs, a Warning header says when no live worker serves its queue.")
            .Produces<JobView>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapGet("/{id:guid}", Get)
            .WithName("GetJob")
            .WithSummary("Get a job (AsyncResult: ready, successful; with ?wait=N, wait)")
            .WithDescription("With ?wait=N, answers as soon as the job is finished or after N seconds, whichever is first.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapGet("/{id:guid}/result", GetResult)
            .WithName("GetJobResult")
            .WithSummary("Get a job's result (AsyncResult.get(timeout))")
            .WithDescription("200 with the result once the job succeeded; 202 with the job and Retry-After if it is not " +
                             "finished within ?timeout=N seconds; 424 with the remote exception (exceptionType, message, " +
                             "stackTrace) if it failed or was canceled.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status424FailedDependency)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapGet("/", List)
            .WithName("ListJobs")
            .WithSummary("List jobs, newest first, filtered and paged")
            .WithDescription("Filter by state, function and queue; page with limit (1–500, default 50) and the nextCursor of the previous page.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return app;
    }

    private static async Task<Results<StreamedResults<JobView>, Accepted<JobView>, ValidationProblem>> Submit(
        [FromBody] SubmitJobRequest? request, [FromQuery] double? wait,
        [FromHeader(Name = IdempotencyKeys.Header)] string? idempotencyKey,
        JobService service, KnownQueues queues, HttpContext http, CancellationToken ct)
    {
        if (request is null)
            return ApiProblems.Validation("body", "Send a JSON object such as {\"function\": \"math.square\", \"args\": [7]}.");
        if (wait is < 0 or double.NaN)
            return ApiProblems.Validation("wait", "wait is a number of seconds ≥ 0.");
        var (job, created) = await service.SubmitAsync(request, idempotencyKey, IdempotencyKeys.Caller(http), ct);
        if (!created) http.Response.Headers["Idempotent-Replayed"] = "true";
        queues.WarnIfUnserved(job.Queue, http);
        try
        {
            if (wait is > 0 && await service.WaitAsync(job.Id, wait.Value, ct) is { } waited && JobStates.IsFinished(waited.State))
                return StreamedJobs.View(waited);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Stored, so accepted: the wait is given up, not the job.
        }
        return TypedResults.Accepted($"/jobs/{job.Id}", JobView.From(job));
    }

    private static async Task<Results<Accepted<JobView>, ProblemHttpResult>> Retry(Guid id, JobSubmitter submitter, KnownQueues queues, HttpContext http, CancellationToken ct)
    {
        switch (await submitter.RetryAsync(id, ct))
        {
            case null:
                return ApiProblems.UnknownJob(id);
            case { Retried: false, Job: var job }:
                return TypedResults.Problem($"Job {id} is {job.State}: only a failed or canceled job can be retried.",
                    statusCode: StatusCodes.Status409Conflict, title: "Job not failed or canceled",
                    extensions: new Dictionary<string, object?> { ["jobId"] = id, ["state"] = job.State });
            case { Job: var job }:
                queues.WarnIfUnserved(job.Queue, http);
                return TypedResults.Accepted($"/jobs/{id}", JobView.From(job));
        }
    }

    /// <summary>The most jobs one POST /jobs/batch carries.</summary>
    public const int MaxBatch = 1000;

    private static async Task<Results<Ok<SubmittedJobs>, ValidationProblem>> SubmitBatch(
        [FromBody] SubmitJobsRequest? request, [FromHeader(Name = IdempotencyKeys.Header)] string? idempotencyKey,
        JobService service, KnownQueues queues, HttpContext http, ILoggerFactory loggers, CancellationToken ct)
    {
        if (request?.Jobs is not { } jobs)
            return ApiProblems.Validation("jobs", "Send {\"jobs\": [ ... ]}: each element a POST /jobs body.");
        if (jobs.Count is 0 or > MaxBatch)
            return ApiProblems.Validation("jobs", $"jobs holds 1 to {MaxBatch} jobs; it has {jobs.Count}.");
        if (idempotencyKey is not null)
            return ApiProblems.Validation(IdempotencyKeys.Header, "POST /jobs/batch takes no Idempotency-Key: send each job to POST /jobs with its own key.");
        // Concurrently, so the submitter commits them together (a batch costs a few commits), but bounded: delayed jobs
        // are stored one transaction each, and a thousand at once would take every pooled connection.
        var logger = loggers.CreateLogger(typeof(JobsApi).FullName!);
        using var slots = new SemaphoreSlim(BatchConcurrency);
        var outcomes = await Task.WhenAll(jobs.Select(async (job, i) =>
        {
            await slots.WaitAsync(ct);
            try
            {
                return await SubmitOneAsync(job, i, service, http, logger, ct);
            }
            finally
            {
                slots.Release();
            }
        }));
        queues.WarnIfUnserved(outcomes.Where(o => o.Job is not null).Select(o => o.Job!.Queue), http);
        return TypedResults.Ok(new SubmittedJobs(outcomes));
    }

    /// <summary>How many jobs of a batch are being stored at once.</summary>
    private const int BatchConcurrency = 200;

    /// <summary>One job of a batch: its view, or the problem POST /jobs would have answered — never an exception, since the others may be stored.</summary>
    private static async Task<SubmittedJob> SubmitOneAsync(SubmitJobRequest? request, int index, JobService service, HttpContext http, ILogger logger, CancellationToken ct)
    {
        if (request is null) return SubmittedJob.Refused(400, "The request is not valid", $"jobs[{index}] is null: each element is a POST /jobs body.", "body");
        try
        {
            var (job, _) = await service.SubmitAsync(request, null, null, ct);
            return new SubmittedJob(JobView.From(job), null);
        }
        catch (RequestRefusedException e)
        {
            return SubmittedJob.Refused(e.Status, e.Title, e.Message, e.Field);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var (status, title, detail) = ProblemsSetup.Classify(e, http.Request);
            if (status >= 500) logger.LogWarning(e, "Job {Index} of a batch failed: {Title}", index, title);
            var refused = SubmittedJob.Refused(status, title, detail, null);
            if (e is SubmissionOutcomeUnknownException { Ids: [var id, ..] }) refused.Problem!.Extensions["jobId"] = id;
            return refused;
        }
    }

    private static async Task<Results<Ok<JobView>, Accepted<JobView>, ProblemHttpResult>> Cancel(Guid id, JobService service, CancellationToken ct) =>
        await service.CancelAsync(id, ct) switch
        {
            null => ApiProblems.UnknownJob(id),
            ({ } job, true) => TypedResults.Ok(JobView.From(job)),
            ({ } job, false) => TypedResults.Accepted($"/jobs/{id}", JobView.From(job)),
        };

    private static async Task<Results<StreamedResults<JobView>, ProblemHttpResult, ValidationProblem>> Get(
        Guid id, [FromQuery] double? wait, JobService service, JobQueries store, CancellationToken ct)
    {
        if (wait is < 0 or double.NaN)
            return ApiProblems.Validation("wait", "wait is a number of seconds ≥ 0.");
        var job = wait is > 0 ? await service.WaitAsync(id, wait.Value, ct) : await store.GetAsync(id, ct, withResult: false);
        return job is null ? ApiProblems.UnknownJob(id) : StreamedJobs.View(job);
    }

    private static async Task<Results<StreamedResults<JobResult>, Accepted<JobView>, ProblemHttpResult, ValidationProblem>> GetResult(
        Guid id, [FromQuery] double? timeout, JobService service, HttpContext http, CancellationToken ct)
    {
        if (timeout is < 0 or double.NaN)
            return ApiProblems.Validation("timeout", "timeout is a number of seconds ≥ 0.");
        var job = await service.WaitAsync(id, timeout ?? 0, ct);
        if (job is null) return ApiProblems.UnknownJob(id);
        var view = JobView.From(job);
        switch (job.State)
        {
            case JobStates.Succeeded:
                return StreamedJobs.Result(job);
            case JobStates.Failed or JobStates.Canceled:
                var failed = job.State == JobStates.Failed;
                return ApiProblems.RemoteError(failed ? "The job failed" : "The job was canceled", job.Error,
                    (type, message) => $"{job.Function} {(failed ? "raised" : "was canceled:")} {type}: {message}",
                    new Dictionary<string, object?> { ["jobId"] = job.Id });
            default:
                http.Response.Headers.RetryAfter = "1";
                return TypedResults.Accepted($"/jobs/{job.Id}", view);
        }
    }

    private static async Task<Results<StreamedResults<JobPage>, ValidationProblem>> List(
        [FromQuery] string? state, [FromQuery] string? function, [FromQuery] string? queue,
        [FromQuery] int? limit, [FromQuery] string? cursor, JobQueries store, CancellationToken ct)
    {
        if (state is not null && !JobStates.All.Contains(state))
            return ApiProblems.Validation("state", $"state must be one of: {string.Join(", ", JobStates.All)}.");
        if (limit is < 1 or > 500)
            return ApiProblems.Validation("limit", "limit must be between 1 and 500.");
        Guid? before = null;
        if (cursor is not null)
        {
            if (!Guid.TryParse(cursor, out var c))
                return ApiProblems.Validation("cursor", "cursor must be the nextCursor of a previous page.");
            before = c;
        }
        var take = limit ?? 50;
        var page = await store.ListAsync(new JobFilter(state, function, queue), take, before, ct, withResult: false);
        var next = page.Count == take ? page[^1].Id.ToString() : null;
        return StreamedJobs.Page(page, next);
    }
}
