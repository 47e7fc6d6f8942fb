using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Core.Database;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Jobs.Api.SingleJobs;

/// <summary>The /jobs endpoints that write: submit (one or a batch), retry, cancel (mapped by <see cref="JobsApi"/>).</summary>
internal static class JobWriteEndpoints
{
    internal static async Task<Results<StreamedResults<JobView>, Accepted<JobView>, ValidationProblem>> Submit(
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

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> Retry(Guid id, JobSubmitter submitter, KnownQueues queues, HttpContext http, CancellationToken ct)
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

    internal static async Task<Results<Ok<SubmittedJobs>, ValidationProblem>> SubmitBatch(
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
        var logger = loggers.CreateLogger(typeof(JobsApi).FullName!); // the category the /jobs endpoints log under
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

    internal static async Task<Results<Ok<JobView>, Accepted<JobView>, ProblemHttpResult>> Cancel(Guid id, JobService service, CancellationToken ct) =>
        await service.CancelAsync(id, ct) switch
        {
            null => ApiProblems.UnknownJob(id),
            ({ } job, true) => TypedResults.Ok(JobView.From(job)),
            ({ } job, false) => TypedResults.Accepted($"/jobs/{id}", JobView.From(job)),
        };
}
