using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// Queues an operator paused (jobs.paused_queue): <see cref="Producer"/>'s fetch takes nothing from them, so jobs
/// already running finish and new ones are accepted and wait. Resuming NOTIFYs <see cref="Channels.NewWork"/>, which
/// wakes a waiting worker of each process at once, which wakes the next while it finds work (should that be missed,
/// their poll looks again within a second).
/// A paused queue's jobs stay in situation 3 of <see cref="Maintenance.Invariants"/> (fetchable, not held): no violation.
/// </summary>
public sealed class PausedQueues(NpgsqlDataSource dataSource)
{
    /// <summary>Pauses <paramref name="queue"/> (again: no change); returns since when it is paused.</summary>
    public async Task<DateTime> PauseAsync(string queue, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            WITH added AS (INSERT INTO jobs.paused_queue (queue) VALUES ($1) ON CONFLICT (queue) DO NOTHING RETURNING paused_at)
            SELECT paused_at FROM added UNION ALL SELECT paused_at FROM jobs.paused_queue WHERE queue = $1
            LIMIT 1
            """);
        cmd.Parameters.Add(new() { Value = queue });
        return DateTime.SpecifyKind((DateTime)(await cmd.ExecuteScalarAsync(ct))!, DateTimeKind.Utc);
    }

    /// <summary>Resumes <paramref name="queue"/> and wakes the workers; returns whether it was paused.</summary>
    public async Task<bool> ResumeAsync(string queue, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH gone AS (DELETE FROM jobs.paused_queue WHERE queue = $1 RETURNING queue)
            SELECT count(*) FROM gone, pg_notify('{Channels.NewWork}', '')
            """);
        cmd.Parameters.Add(new() { Value = queue });
        return (long)(await cmd.ExecuteScalarAsync(ct))! > 0;
    }

    /// <summary>Every paused queue and since when.</summary>
    public async Task<IReadOnlyDictionary<string, DateTime>> ListAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT queue, paused_at FROM jobs.paused_queue");
        return (await cmd.ReadListAsync(r => (r.GetString(0), DateTime.SpecifyKind(r.GetDateTime(1), DateTimeKind.Utc)), ct))
            .ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);
    }
}
