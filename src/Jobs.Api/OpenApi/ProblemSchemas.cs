namespace Jobs.Api.OpenApi;

// What the API's problem+json answers hold, as the OpenAPI document describes them (ContractFilters picks one per status).
// The answers are ProblemDetails with extensions; these types only give generated clients their members, typed.

/// <summary>A problem+json answer (RFC 9457).</summary>
internal record Problem
{
    /// <summary>A URI reference naming the kind of problem.</summary>
    public string? Type { get; init; }
    /// <summary>What went wrong, in a few words.</summary>
    public string Title { get; init; } = "";
    /// <summary>The HTTP status code.</summary>
    public int Status { get; init; }
    /// <summary>What went wrong here and what to do about it.</summary>
    public string? Detail { get; init; }
    /// <summary>The request's trace id, as in the service's logs.</summary>
    public string? TraceId { get; init; }
}

/// <summary>404: the job, map, function or schedule named in the path does not exist (or its retention period is over).</summary>
internal sealed record NotFoundProblem : Problem;

/// <summary>429: too many requests from this caller (or too many failed authentications); retry after Retry-After seconds.</summary>
internal sealed record RateLimitProblem : Problem;

/// <summary>424: what the job (or the map's first failing item) raised in the worker, or why it was canceled.</summary>
internal sealed record RemoteErrorProblem : Problem
{
    /// <summary>The exception's type, e.g. "ValueError" or "System.DivideByZeroException".</summary>
    public string? ExceptionType { get; init; }
    /// <summary>The exception's message.</summary>
    public string? Message { get; init; }
    /// <summary>Where it was raised, as the worker's runtime printed it.</summary>
    public string? StackTrace { get; init; }
    /// <summary>What a Python exception was made with (its <c>args</c>), when JSON could carry them; absent otherwise.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<object?>? Args { get; init; }
    /// <summary>The job that failed (GET /jobs/{id}/result).</summary>
    public Guid? JobId { get; init; }
    /// <summary>The map whose item failed (GET /maps/{id}/results).</summary>
    public Guid? MapId { get; init; }
    /// <summary>The failing item's index in the map's items (GET /maps/{id}/results).</summary>
    public int? Index { get; init; }
}
