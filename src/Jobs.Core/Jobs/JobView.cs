using System.Text.Json;

namespace Jobs.Core.Jobs;

/// <summary>A job as clients see it: Python's AsyncResult, serialisable. Also the body of completion callbacks.</summary>
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
    DateTime? FinishedAt,
    DateTime? RunAt,
    double? TimeoutSeconds,
    int Retries,
    string? CallbackUrl,
    JsonElement? Callback)
{
    public static JobView From(JobRecord r)
    {
        var ready = JobStates.IsFinished(r.State);
        return new JobView(r.Id, r.Function, Parse(r.Args)!.Value, Parse(r.Kwargs)!.Value, r.Queue, r.State,
            ready, ready ? r.State == JobStates.Succeeded : null,
            r.State == JobStates.Succeeded ? Parse(r.Result) : null,
            Parse(r.Error), r.Attempts, Parse(r.Progress),
            Utc(r.CreatedAt), Utc(r.StartedAt), Utc(r.FinishedAt), Utc(r.RunAt),
            r.TimeoutSeconds, r.MaxRetries, r.CallbackUrl, Parse(r.Callback));
    }

    private static JsonElement? Parse(string? json)
    {
        if (json is null) return null;
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    private static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);
    private static DateTime? Utc(DateTime? t) => t is { } v ? Utc(v) : null;
}
