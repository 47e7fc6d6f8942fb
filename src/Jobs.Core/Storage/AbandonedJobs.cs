using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Storage;

/// <summary>
/// Puts jobs abandoned by a dead worker back at the head of their queue.
/// </summary>
/// <remarks>
/// Hangfire.PostgreSql makes a fetched job visible again once its sliding invisibility timeout passes without
/// a keep-alive, but its fetch takes never-fetched jobs first and expired ones only when no new job is left:
/// under a backlog, a killed worker's job waits for the whole queue to drain. Clearing <c>fetchedat</c> is what
/// Hangfire.PostgreSql's own <c>Requeue()</c> does; the job then sorts by its (old) id, ahead of the backlog.
/// REVIEW: the one place we write to Hangfire's schema; revisit if Hangfire.PostgreSql changes its fetch order.
/// </remarks>
public sealed class AbandonedJobs(NpgsqlDataSource dataSource)
{
    /// <summary>Requeues fetched jobs without a keep-alive for longer than <paramref name="invisibilityTimeout"/>; returns how many.</summary>
    public async Task<int> RequeueAsync(TimeSpan invisibilityTimeout, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            UPDATE {Database.Migrator.HangfireSchema}.jobqueue SET fetchedat = NULL
            WHERE fetchedat IS NOT NULL AND fetchedat < now() - $1
            """);
        cmd.Parameters.Add(new() { Value = invisibilityTimeout, NpgsqlDbType = NpgsqlDbType.Interval });
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
