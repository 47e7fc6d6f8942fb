using System.Text.Json;
using System.Text.Json.Serialization;
using Jobs.Core.Storage;

namespace Jobs.Api.Jobs;

/// <summary>POST /jobs: <c>pool.apply_async(function, args, kwargs)</c>. Only <c>function</c> is required.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class SubmitJobRequest
{
    /// <summary>A registered function's name, e.g. "math.square" (GET /functions lists them).</summary>
    public string? Function { get; set; }

    /// <summary>Positional arguments: a JSON array. Default [].</summary>
    public JsonElement Args { get; set; }

    /// <summary>Keyword arguments: a JSON object. Default {}.</summary>
    public JsonElement Kwargs { get; set; }

    /// <summary>The queue to run on; workers serve the queues in their Worker:Queues. Default "default".</summary>
    public string? Queue { get; set; }
}

/// <summary>A job as clients see it: Python's AsyncResult, serialisable.</summary>
public sealed record JobView(
    Guid Id,
    string Function,
    JsonElement Args,
    JsonElement Kwargs,
    string Queue,
    string State,
    bool Ready,
    bool? Successful,
    JsonElement? Result,
    JsonElement? Error,
    int Attempts,
    JsonElement? Progress,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt)
{
    public static JobView From(JobRecord r)
    {
        var ready = JobStates.IsFinished(r.State);
        return new JobView(r.Id, r.Function, Parse(r.Args)!.Value, Parse(r.Kwargs)!.Value, r.Queue, r.State,
            ready, ready ? r.State == JobStates.Succeeded : null,
            r.State == JobStates.Succeeded ? Parse(r.Result) : null,
            Parse(r.Error), r.Attempts, Parse(r.Progress),
            Utc(r.CreatedAt), r.StartedAt is { } s ? Utc(s) : null, r.FinishedAt is { } f ? Utc(f) : null);
    }

    private static JsonElement? Parse(string? json)
    {
        if (json is null) return null;
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    private static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);
}

/// <summary>GET /jobs: one page, newest first; pass <c>nextCursor</c> as <c>cursor</c> for the next.</summary>
public sealed record JobPage(IReadOnlyList<JobView> Items, string? NextCursor);

/// <summary>GET /jobs/{id}/result when the job succeeded: <c>AsyncResult.get()</c>'s value.</summary>
public sealed record JobResult(JsonElement? Result);
