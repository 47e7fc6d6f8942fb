using Jobs.Api.Notifications;
using Jobs.Api.OpenApi;
using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Api.Security;
using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Jobs.Core.SingleJobs;

namespace Jobs.Api.SingleJobs;

/// <summary>/jobs: apply_async, apply, AsyncResult.get/wait/ready/successful.</summary>
internal static class JobsApi
{
    /// <summary>The /jobs endpoints' services; needs <c>AddJobsCore</c> (Program.cs).</summary>
    public static IServiceCollection AddSingleJobsApi(this IServiceCollection services)
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

    public static IEndpointRouteBuilder MapSingleJobsApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/jobs").WithTags("Jobs").RequireApiKey().WithRefusalsAsProblems();

        jobs.MapPost("/", JobWriteEndpoints.Submit)
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

        jobs.MapPost("/batch", JobWriteEndpoints.SubmitBatch)
            .WithName("SubmitJobs")
            .WithSummary("Submit many jobs in one request (a pool's many apply_async calls)")
            .WithDescription("Each job is checked, stored and queued as POST /jobs would, independently of the others, and " +
                             "the jobs are committed together: many small submissions cost one round trip. The answer lists, " +
                             "in request order, each job's JobView or the problem that refused it (then nothing was stored " +
                             $"for that one). At most {JobWriteEndpoints.MaxBatch} jobs per request; no Idempotency-Key.")
            .Accepts<SubmitJobsRequest>("application/json")
            .WithRequestExample("""{ "jobs": [ { "function": "math.square", "args": [1] }, { "function": "math.square", "args": [2] } ] }""")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        jobs.MapDelete("/{id:guid}", JobWriteEndpoints.Cancel)
            .WithName("CancelJob")
            .WithSummary("Cancel a job (AsyncResult's share of Pool.terminate)")
            .WithDescription("A scheduled or queued job is canceled at once (200). A running job's CancellationToken is " +
                             "signalled (202); it ends 'canceled' when the function stops, within about a second if it " +
                             "observes the token. 409 when the job already finished.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapPost("/{id:guid}/retry", JobWriteEndpoints.Retry)
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

        jobs.MapGet("/{id:guid}", JobReadEndpoints.Get)
            .WithName("GetJob")
            .WithSummary("Get a job (AsyncResult: ready, successful; with ?wait=N, wait)")
            .WithDescription("With ?wait=N, answers as soon as the job is finished or after N seconds, whichever is first.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapGet("/{id:guid}/result", JobReadEndpoints.GetResult)
            .WithName("GetJobResult")
            .WithSummary("Get a job's result (AsyncResult.get(timeout))")
            .WithDescription("200 with the result once the job succeeded; 202 with the job and Retry-After if it is not " +
                             "finished within ?timeout=N seconds; 424 with the remote exception (exceptionType, message, " +
                             "stackTrace) if it failed or was canceled.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status424FailedDependency)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        jobs.MapGet("/", JobReadEndpoints.List)
            .WithName("ListJobs")
            .WithSummary("List jobs, newest first, filtered and paged")
            .WithDescription("Filter by state, function and queue; page with limit (1–500, default 50) and the nextCursor of the previous page.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return app;
    }
}
