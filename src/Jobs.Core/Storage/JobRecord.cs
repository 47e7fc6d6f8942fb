namespace Jobs.Core.Storage;

/// <summary>The job states a client sees, as stored in jobs.job.state.</summary>
public static class JobStates
{
    public const string Scheduled = "scheduled";
    public const string Enqueued = "enqueued";
    public const string Processing = "processing";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static readonly IReadOnlyList<string> All = [Scheduled, Enqueued, Processing, Succeeded, Failed, Canceled];

    public static bool IsFinished(string state) => state is Succeeded or Failed or Canceled;
}

/// <summary>One row of jobs.job. JSON columns are kept as JSON text; the API hands them on verbatim.</summary>
public sealed record JobRecord(
    Guid Id,
    string Function,
    string Args,
    string Kwargs,
    string Queue,
    string State,
    string? Result,
    string? Error,
    string? Progress,
    int Attempts,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    DateTime? RunAt,
    double? TimeoutSeconds,
    int MaxRetries,
    string? CallbackUrl,
    string? Callback,
    string? HangfireJobId);

/// <summary>A job to store: validated by the caller (API or schedule), not yet durable.</summary>
public sealed record NewJob(
    string Function,
    string Args,
    string Kwargs,
    string Queue,
    DateTime? RunAt = null,
    double? TimeoutSeconds = null,
    int MaxRetries = 0,
    string? CallbackUrl = null,
    string? ScheduleName = null,
    string? TraceParent = null);

/// <summary>
/// An Idempotency-Key with the hash of the request it was first used for. <paramref name="Scope"/> is the API key
/// that sent it (empty without keys): each API key has its own keys, so one client cannot replay another's job.
/// </summary>
public sealed record IdempotencyClaim(string Key, byte[] RequestHash, TimeSpan Window, string Scope = "")
{
    /// <summary>The key as stored: the scope and the key, apart (a header value cannot hold U+001F).</summary>
    public string StoredKey => Scope.Length == 0 ? Key : Scope + "\u001f" + Key;
}

/// <summary>The same Idempotency-Key was used before with a different request.</summary>
public sealed class IdempotencyConflictException(string key)
    : Exception($"Idempotency-Key '{key}' was already used with a different request. Use a new key for a different request.");

/// <summary>
/// What the runner needs to run a claimed job. <paramref name="Resumed"/>: it was found 'processing', its last run's
/// worker died. <paramref name="DueAt"/>: when it could first have started (submission, or its runAt).
/// <paramref name="TraceParent"/>: the submitting request's W3C trace context, the parent of the run's span.
/// </summary>
public sealed record ClaimedJob(
    Guid Id, string Function, string Args, string Kwargs, string Queue, int Attempts, double? TimeoutSeconds, int MaxRetries,
    string? CallbackUrl, int Crashes, bool Resumed, DateTime DueAt, string? TraceParent);

/// <summary>
/// How one run of a job ended, as <see cref="JobStore.FinishAsync"/> writes it: State is succeeded, failed or canceled
/// (finished), scheduled (a retry after <paramref name="RetryIn"/>) or enqueued (handed back unrun: the worker is
/// stopping). Json is the result (succeeded) or the error.
/// </summary>
public sealed record JobOutcome(Guid Id, string State, string? Json, TimeSpan? RetryIn = null, string? NewOwner = null);

public sealed record JobFilter(string? State, string? Function, string? Queue);

/// <summary>
/// PostgreSQL went away while a submission was being committed: it may or may not have been stored (the commit
/// may have been done when the connection broke). <paramref name="Ids"/> are the ids the jobs (or the map) have if
/// it was; a failure before the commit is never this: then nothing was stored.
/// </summary>
public sealed class SubmissionOutcomeUnknownException(string kind, IReadOnlyList<Guid> ids, Exception inner)
    : Exception($"PostgreSQL went away while the {kind} was being committed; it may have been stored as {kind} {ids[0]}.", inner)
{
    public string Kind { get; } = kind;
    public IReadOnlyList<Guid> Ids { get; } = ids;

    /// <summary>Commits <paramref name="tx"/>; a broken connection during the commit becomes this exception.</summary>
    public static async Task CommitAsync(Npgsql.NpgsqlTransaction tx, string kind, IReadOnlyList<Guid> ids, CancellationToken ct)
    {
        try
        {
            await tx.CommitAsync(ct);
        }
        catch (Exception e) when (MayHaveCommitted(e))
        {
            throw new SubmissionOutcomeUnknownException(kind, ids, e);
        }
    }

    /// <summary>
    /// A failure after a commit was sent that does not say the commit failed: the connection broke, or the server
    /// is shutting down (57P01 can come after the commit was made durable). A statement PostgreSQL refused is not this.
    /// </summary>
    public static bool MayHaveCommitted(Exception e) => e is Npgsql.NpgsqlException and not Npgsql.PostgresException || DatabaseRetry.IsUnavailable(e);
}
