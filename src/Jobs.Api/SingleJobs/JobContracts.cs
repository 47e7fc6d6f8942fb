using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Jobs.Core.SingleJobs;

namespace Jobs.Api.SingleJobs;

/// <summary>POST /jobs: <c>pool.apply_async(function, args, kwargs)</c>. Only <c>function</c> is required.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class SubmitJobRequest
{
    /// <summary>A registered function's name, e.g. "math.square" (GET /functions lists them).</summary>
    [Required]
    public string? Function { get; set; }

    /// <summary>Positional arguments: a JSON array. Default [].</summary>
    public JsonElement Args { get; set; }

    /// <summary>Keyword arguments: a JSON object. Default {}.</summary>
    public JsonElement Kwargs { get; set; }

    /// <summary>The queue to run on; workers serve the queues in their Worker:Queues. Default "default".</summary>
    public string? Queue { get; set; }

    /// <summary>Start no earlier than this many seconds from now.</summary>
    public double? DelaySeconds { get; set; }

    /// <summary>Start no earlier than this time (ISO 8601 with offset). Not together with delaySeconds.</summary>
    public DateTimeOffset? RunAt { get; set; }

    /// <summary>Cancel the job and fail it with Jobs.Core.Execution.JobTimeoutException after this many seconds of running.</summary>
    public double? TimeoutSeconds { get; set; }

    /// <summary>Run again this many times after a failure, with exponential backoff. Default Jobs:DefaultRetries (0).</summary>
    public int? Retries { get; set; }

    /// <summary>POST the finished JobView here (signed; the host must be in Callbacks:AllowedHosts).</summary>
    public string? CallbackUrl { get; set; }

    /// <summary>
    /// Where args and kwargs held Python tuples (the Python client sends it; other clients leave it out): JSON Pointers
    /// of arrays in them, which a Python function receives as tuples. The job's <c>tuples</c> gives them back, and the
    /// result's.
    /// </summary>
    public TupleLocations? Tuples { get; set; }
}

/// <summary>JSON Pointers (RFC 6901) of the arrays that were Python tuples: "" the value itself, "/0/1" the second element of the first.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class TupleLocations
{
    /// <summary>Into args.</summary>
    public List<string>? Args { get; set; }

    /// <summary>Into kwargs.</summary>
    public List<string>? Kwargs { get; set; }
}

/// <summary>POST /jobs/batch: many POST /jobs bodies in one request.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class SubmitJobsRequest
{
    /// <summary>The jobs, each as POST /jobs takes it (1 to 1000).</summary>
    [Required]
    public List<SubmitJobRequest?>? Jobs { get; set; }
}

/// <summary>POST /jobs/batch's answer: one entry per job sent, in the same order.</summary>
internal sealed record SubmittedJobs(IReadOnlyList<SubmittedJob> Jobs);

/// <summary>A job of a batch: stored (<c>job</c>), or refused as POST /jobs would refuse it (<c>problem</c>, nothing stored).</summary>
internal sealed record SubmittedJob(JobView? Job, Microsoft.AspNetCore.Mvc.ProblemDetails? Problem)
{
    public static SubmittedJob Refused(int status, string title, string detail, string? field)
    {
        var problem = new Microsoft.AspNetCore.Mvc.ProblemDetails { Status = status, Title = title, Detail = detail };
        if (field is not null) problem.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [detail] };
        return new SubmittedJob(null, problem);
    }
}

/// <summary>GET /jobs: one page, newest first; pass <c>nextCursor</c> as <c>cursor</c> for the next.</summary>
internal sealed record JobPage(IReadOnlyList<JobView> Items, string? NextCursor);

/// <summary>
/// GET /jobs/{id}/result when the job succeeded: <c>AsyncResult.get()</c>'s value. <c>ready</c> is always true here and
/// false in the 202's job, so a generated client that reads every 2xx as one type (Kiota) still tells "not ready"
/// from a result of null.
/// </summary>
internal sealed record JobResult(RawJson? Result)
{
    [JsonPropertyOrder(-1)]
    public bool Ready { get; init; } = true;

    /// <summary>Where the result held Python tuples (JSON Pointers, as in a job's <c>tuples</c>); left out when it held none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RawJson? Tuples { get; init; }
}
