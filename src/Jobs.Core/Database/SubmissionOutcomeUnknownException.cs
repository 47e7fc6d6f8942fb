using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// PostgreSQL went away while a submission was being committed: it may or may not have been stored (the commit
/// may have been done when the connection broke). <paramref name="ids"/> are the ids the jobs (or the map) have if
/// it was; a failure before the commit is never this: then nothing was stored.
/// </summary>
public sealed class SubmissionOutcomeUnknownException(string kind, IReadOnlyList<Guid> ids, Exception inner)
    : Exception($"PostgreSQL went away while the {kind} was being committed; it may have been stored as {kind} {ids[0]}.", inner)
{
    public string Kind { get; } = kind;
    public IReadOnlyList<Guid> Ids { get; } = ids;

    /// <summary>Commits <paramref name="tx"/>; a broken connection during the commit becomes this exception.</summary>
    public static async Task CommitAsync(NpgsqlTransaction tx, string kind, IReadOnlyList<Guid> ids, CancellationToken ct)
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
    public static bool MayHaveCommitted(Exception e) => e is NpgsqlException and not PostgresException || DatabaseRetry.IsUnavailable(e);
}
