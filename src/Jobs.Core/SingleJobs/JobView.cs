namespace Jobs.Core.SingleJobs;

/// <summary>
/// A job as clients see it: Python's AsyncResult, serialisable. Also the body of completion callbacks. Its JSON
/// values are the stored text, written as stored (<see cref="RawJson"/>).
/// </summary>
public sealed record JobView(
    Guid Id,
    string Function,
    RawJson Args,
    RawJson Kwargs,
    string Queue,
    string State,
    bool Ready,
    bool? Successful,
    RawJson? Result,
    RawJson? Error,
    int Attempts,
    RawJson? Progress,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    DateTime? RunAt,
    double? TimeoutSeconds,
    int Retries,
    string? CallbackUrl,
    RawJson? Callback,
    RawJson? Tuples)
{
    public static JobView From(JobRecord r)
    {
        var ready = JobStates.IsFinished(r.State);
        return new JobView(r.Id, r.Function, new RawJson(r.Args), new RawJson(r.Kwargs), r.Queue, r.State,
            ready, ready ? r.State == JobStates.Succeeded : null,
            r.State == JobStates.Succeeded ? RawJson.From(r.Result) : null,
            RawJson.From(r.Error), r.Attempts, RawJson.From(r.Progress),
            Utc(r.CreatedAt), Utc(r.StartedAt), Utc(r.FinishedAt), Utc(r.RunAt),
            r.TimeoutSeconds, r.MaxRetries, r.CallbackUrl, RawJson.From(r.Callback), RawJson.From(r.Tuples));
    }

    private static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);
    private static DateTime? Utc(DateTime? t) => t is { } v ? Utc(v) : null;
}
