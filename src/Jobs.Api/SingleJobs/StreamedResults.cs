using System.Reflection;
using System.Text.Json;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace Jobs.Api.SingleJobs;

/// <summary>
/// A JSON response carrying stored results (a job, its result, a page of jobs) that copies each result from
/// PostgreSQL to the response as it writes (<see cref="JobQueries.CopyResultAsync"/>): the rest is serialized as
/// usual with <see cref="RawJson.Placeholder"/> where each result goes. Concurrent reads of large results then cost
/// the API a copy buffer each, not copies of the results (a result may be Jobs:MaxResultBytes, 16 MiB).
/// </summary>
/// <typeparam name="T">What the response is (<see cref="JobView"/>, <see cref="JobResult"/>, <see cref="JobPage"/>), for the OpenAPI document.</typeparam>
internal sealed class StreamedResults<T>(int status, T value, IReadOnlyList<Guid> results, string? location = null)
    : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    public int? StatusCode => status;

    public async Task ExecuteAsync(HttpContext http)
    {
        var json = http.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var queries = http.RequestServices.GetRequiredService<JobQueries>();
        var text = JsonSerializer.SerializeToUtf8Bytes(value, json);
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        if (location is not null) http.Response.Headers.Location = location;
        var body = http.Response.Body;
        var ct = http.RequestAborted;
        if (results.Count > 0) StreamedJobs.RequireReadingPace(http);
        var from = 0;
        foreach (var id in results)
        {
            var at = Array.IndexOf(text, RawJson.PlaceholderByte, from);
            await body.WriteAsync(text.AsMemory(from, at - from), ct);
            await queries.CopyResultAsync(id, body, ct);
            from = at + 1;
        }
        await body.WriteAsync(text.AsMemory(from), ct);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(T), ["application/json"]));
}

/// <summary>Builds <see cref="StreamedResults{T}"/> from jobs read without their large results (<c>withResult: false</c>).</summary>
internal static class StreamedJobs
{
    /// <summary>The job as <see cref="JobView"/>, its result (if it succeeded) copied in from the database.</summary>
    public static StreamedResults<JobView> View(JobRecord job, int status = StatusCodes.Status200OK, string? location = null)
    {
        var (view, results) = WithPlaceholder(job);
        return new StreamedResults<JobView>(status, view, results, location);
    }

    /// <summary>GET /jobs/{id}/result of a succeeded job.</summary>
    public static StreamedResults<JobResult> Result(JobRecord job)
    {
        var tuples = job.Tuples is null ? null : RawJson.From(System.Text.Json.Nodes.JsonNode.Parse(job.Tuples)?["result"]?.ToJsonString());
        return job.ResultNotRead
            ? new(StatusCodes.Status200OK, new JobResult(RawJson.Placeholder) { Tuples = tuples }, [job.Id])
            : new(StatusCodes.Status200OK, new JobResult(RawJson.From(job.Result)) { Tuples = tuples }, []);
    }

    /// <summary>A page of GET /jobs.</summary>
    public static StreamedResults<JobPage> Page(IReadOnlyList<JobRecord> jobs, string? nextCursor)
    {
        var views = jobs.Select(WithPlaceholder).ToList();
        return new StreamedResults<JobPage>(StatusCodes.Status200OK, new JobPage([.. views.Select(v => v.View)], nextCursor),
            [.. views.SelectMany(v => v.Results)]);
    }

    /// <summary>
    /// A response copying a stored result from the database holds a pooled connection while its client reads
    /// (<see cref="Core.Database.Rows.MaxConcurrentCopies"/> at once): a client that reads it slower than 64 KiB/s (after
    /// 10 s) is disconnected, so 16 MiB take at most about 4 minutes and a stalled reader cannot keep one for good.
    /// Kestrel's default is 240 bytes/s.
    /// </summary>
    public static void RequireReadingPace(HttpContext http)
    {
        if (http.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinResponseDataRateFeature>() is { } rate)
            rate.MinDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(64 * 1024, TimeSpan.FromSeconds(10));
    }

    private static (JobView View, Guid[] Results) WithPlaceholder(JobRecord job) =>
        job is { State: JobStates.Succeeded, ResultNotRead: true } ? (JobView.From(job) with { Result = RawJson.Placeholder }, [job.Id]) : (JobView.From(job), []);
}
