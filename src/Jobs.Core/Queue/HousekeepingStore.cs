using Jobs.Core.Database;
using Jobs.Core.SingleJobs;
using Jobs.Core.Maps;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Queue;

/// <summary>
/// What the workers' maintenance does: find what a dead process left half-done (a row never handed to Hangfire, a
/// callback never queued) and delete what is past its retention.
/// </summary>
public sealed class HousekeepingStore(NpgsqlDataSource dataSource)
{
    /// <summary>Rows accepted longer than <paramref name="grace"/> ago that never got a Hangfire job (their API died).</summary>
    public async Task<IReadOnlyList<JobRecord>> FindUndispatchedJobsAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {JobQueries.Columns} FROM jobs.job
            WHERE dispatched_at IS NULL AND state IN ('enqueued', 'scheduled') AND created_at < now() - $1
            ORDER BY created_at
            LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(JobQueries.Read, ct);
    }

    /// <summary>
    /// Chunks given their turn longer than <paramref name="grace"/> ago that never got a Hangfire job: the process
    /// that gave it (the API storing the map, or the worker ending the chunk before) died in between.
    /// </summary>
    public async Task<IReadOnlyList<UndispatchedChunk>> FindUndispatchedChunksAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT c.map_id, c.chunk, m.function, m.queue, c.first_index, c.end_index
            FROM jobs.map_chunk c JOIN jobs.map m ON m.id = c.map_id
            WHERE c.state = 'enqueued' AND c.dispatched_at IS NOT NULL AND c.hangfire_job_id IS NULL AND c.dispatched_at < now() - $1
            ORDER BY c.dispatched_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => new UndispatchedChunk(reader.GetGuid(0), reader.GetInt32(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4), reader.GetInt32(5)), ct);
    }

    /// <summary>
    /// Unfinished maps with chunks waiting for a turn while fewer than their window have one: what no chunk's end
    /// will refill (every end refills in its own transaction, so this is a repair, normally empty).
    /// </summary>
    public async Task<IReadOnlyList<Guid>> FindMapsBelowWindowAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT m.id FROM jobs.map m
            WHERE m.state IN ('enqueued', 'processing') AND m.cancel_requested_at IS NULL AND m.next_chunk < m.chunks AND m.created_at < now() - $1
              AND m.dispatch_window > (SELECT count(DISTINCT coalesce(c.hangfire_job_id, c.chunk::text)) FROM jobs.map_chunk c
                                       WHERE c.map_id = m.id AND c.state IN ('enqueued', 'processing') AND c.dispatched_at IS NOT NULL)
            ORDER BY m.created_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => reader.GetGuid(0), ct);
    }

    /// <summary>Maps canceled longer than <paramref name="grace"/> ago whose items are not all marked yet (the API that canceled them died).</summary>
    public async Task<IReadOnlyList<Guid>> FindUnsettledCanceledMapsAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id FROM jobs.map WHERE unsettled_from IS NOT NULL AND cancel_requested_at < now() - $1 ORDER BY cancel_requested_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => reader.GetGuid(0), ct);
    }

    /// <summary>Finished jobs whose callback nobody took (their worker died right after finishing them).</summary>
    public async Task<IReadOnlyList<(Guid Id, string Queue)>> FindUnsentCallbacksAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, queue FROM jobs.job
            WHERE callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL AND finished_at < now() - $1
            ORDER BY finished_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => (reader.GetGuid(0), reader.GetString(1)), ct);
    }

    /// <summary>Deletes finished jobs past their retention; returns the Hangfire ids of the failed ones.</summary>
    public async Task<(int Deleted, IReadOnlyList<string> FailedHangfireJobs)> PurgeExpiredJobsAsync(int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            DELETE FROM jobs.job WHERE id IN (
                SELECT id FROM jobs.job WHERE expires_at < now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING state, hangfire_job_id
            """);
        cmd.Parameters.Add(new() { Value = limit });
        var deleted = 0;
        var failed = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            deleted++;
            if (reader.GetString(0) == JobStates.Failed && !reader.IsDBNull(1)) failed.Add(reader.GetString(1));
        }
        return (deleted, failed);
    }

    /// <summary>Deletes finished maps past their retention, with their chunks, items, outcomes and tallies.</summary>
    public async Task<int> PurgeExpiredMapsAsync(int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            WITH gone AS (
                DELETE FROM jobs.map WHERE id IN (SELECT id FROM jobs.map WHERE expires_at < now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                RETURNING id
            ),
            chunks AS (DELETE FROM jobs.map_chunk WHERE map_id IN (SELECT id FROM gone)),
            items AS (DELETE FROM jobs.map_item WHERE map_id IN (SELECT id FROM gone)),
            results AS (DELETE FROM jobs.map_result WHERE map_id IN (SELECT id FROM gone)),
            tallies AS (DELETE FROM jobs.map_tally WHERE map_id IN (SELECT id FROM gone))
            SELECT count(*) FROM gone
            """);
        cmd.Parameters.Add(new() { Value = limit });
        return (int)(long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Forgets Idempotency-Keys whose window is over.</summary>
    public async Task<int> PurgeExpiredIdempotencyKeysAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM jobs.idempotency_key WHERE expires_at < now()");
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
