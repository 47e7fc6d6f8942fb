using Jobs.Api.Problems;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Jobs.Api.SingleJobs;

/// <summary>The /jobs endpoints that read: a job, its result, a page of jobs (mapped by <see cref="JobsApi"/>).</summary>
internal static class JobReadEndpoints
{
    internal static async Task<Results<StreamedResults<JobView>, ProblemHttpResult, ValidationProblem>> Get(
        Guid id, [FromQuery] double? wait, JobService service, JobQueries store, CancellationToken ct)
    {
        if (wait is < 0 or double.NaN)
            return ApiProblems.Validation("wait", "wait is a number of seconds ≥ 0.");
        var job = wait is > 0 ? await service.WaitAsync(id, wait.Value, ct) : await store.GetAsync(id, ct, withResult: false);
        return job is null ? ApiProblems.UnknownJob(id) : StreamedJobs.View(job);
    }

    internal static async Task<Results<StreamedResults<JobResult>, Accepted<JobView>, ProblemHttpResult, ValidationProblem>> GetResult(
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

    internal static async Task<Results<StreamedResults<JobPage>, ValidationProblem>> List(
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
