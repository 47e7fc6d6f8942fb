using Jobs.Core.Database;
using Jobs.Core.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Maps;

/// <summary>What a worker does to a map while it runs a chunk: claim it, read its items, write their outcomes in flushes, end it.</summary>
public sealed class MapExecutionStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Takes a chunk for one run, like <see cref="SingleJobs.JobExecutionStore.ClaimAsync"/>: the first Hangfire job to claim it
    /// owns it. A Hangfire job run again (its worker died, or the invariant watch repaired it) whose chunk is done
    /// takes back the chunks it had carried on with instead (<see cref="FinishRunAsync"/>).
    /// </summary>
    /// <param name="run">The run's own id (<c>jobs.map_chunk.run_id</c>): its release, end and outcomes must name it.</param>
    public async Task<ClaimedChunk?> ClaimChunkAsync(Guid mapId, int chunk, string hangfireJobId, string worker, CancellationToken ct, Guid? run = null) =>
        await ClaimAsync(mapId, "chunk = $5 AND (hangfire_job_id IS NULL OR hangfire_job_id = $2)", chunk, hangfireJobId, worker, run, ct)
        ?? await ClaimAsync(mapId, "hangfire_job_id = $2", null, hangfireJobId, worker, run, ct);

    private async Task<ClaimedChunk?> ClaimAsync(Guid mapId, string which, int? chunk, string hangfireJobId, string worker, Guid? run, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH claimed AS (
                UPDATE jobs.map_chunk SET state = 'processing', attempts = attempts + 1, started_at = now(), worker = $3,
                    crashes = crashes + CASE WHEN state = 'processing' THEN 1 ELSE 0 END,
                    hangfire_job_id = $2, dispatched_at = coalesce(dispatched_at, now()), run_id = $4
                WHERE map_id = $1 AND {which}
                  AND state IN ('enqueued', 'processing')
                  AND NOT EXISTS (SELECT 1 FROM jobs.map WHERE id = $1 AND cancel_requested_at IS NOT NULL)
                RETURNING chunk, first_index, end_index, attempts, crashes
            ),
            started AS (UPDATE jobs.map SET state = 'processing' WHERE id = $1 AND state = 'enqueued' AND EXISTS (SELECT 1 FROM claimed))
            SELECT m.function, m.kwargs::text, min(c.first_index), max(c.end_index), max(c.attempts), max(c.crashes), m.queue, m.timeout_seconds, m.created_at,
                min(c.chunk), max(c.chunk) + 1, m.chunksize
            FROM claimed c, jobs.map m WHERE m.id = $1 GROUP BY m.id
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        cmd.Parameters.Add(Parameters.Uuid(run));
        if (chunk is { } c) cmd.Parameters.Add(new() { Value = c });
        return await cmd.ReadFirstOrDefaultAsync(r => new ClaimedChunk(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4),
            r.GetInt32(5), r.GetString(6), r.DoubleOrNull(7), r.GetDateTime(8), r.GetInt32(9), r.GetInt32(10), r.GetInt32(11)), ct);
    }

    /// <summary>A graceful stop: the run of chunks [first, end) goes back to 'enqueued' (uncounted), still held by its
    /// Hangfire job, whose re-run takes them back (<see cref="ClaimChunkAsync"/>) and does the items left.</summary>
    public async Task ReleaseRunAsync(Guid mapId, int firstChunk, int endChunk, string hangfireJobId, CancellationToken ct, Guid? run = null)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.map_chunk SET state = 'enqueued'
            WHERE map_id = $1 AND chunk >= $2 AND chunk < $3 AND hangfire_job_id = $4 AND state = 'processing' AND run_id IS NOT DISTINCT FROM $5
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = firstChunk });
        cmd.Parameters.Add(new() { Value = endChunk });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(Parameters.Uuid(run));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The chunk's items that have no outcome yet (all of them, unless this is a re-run after a crash). Two range reads
    /// of the primary keys, subtracted here: as one anti-join, PostgreSQL planned a scan of jobs.map_result per item
    /// whenever its statistics were taken while the table was nearly empty (seconds per chunk on the second map after
    /// a start).
    /// </summary>
    public async Task<IReadOnlyList<(int Index, string Args, string? Tuples)>> PendingItemsAsync(Guid mapId, int first, int end, CancellationToken ct)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new("SELECT index FROM jobs.map_result WHERE map_id = $1 AND index >= $2 AND index < $3")
            { Parameters = { new() { Value = mapId }, new() { Value = first }, new() { Value = end } } });
        batch.BatchCommands.Add(new("SELECT index, args::text, tuples::text FROM jobs.map_item WHERE map_id = $1 AND index >= $2 AND index < $3 ORDER BY index")
            { Parameters = { new() { Value = mapId }, new() { Value = first }, new() { Value = end } } });
        await using var reader = await batch.ExecuteReaderAsync(ct);
        var done = new HashSet<int>();
        while (await reader.ReadAsync(ct)) done.Add(reader.GetInt32(0));
        await reader.NextResultAsync(ct);
        var pending = new List<(int, string, string?)>(end - first - done.Count);
        while (await reader.ReadAsync(ct))
            if (!done.Contains(reader.GetInt32(0))) pending.Add((reader.GetInt32(0), reader.GetString(1), reader.StringOrNull(2)));
        return pending;
    }

    /// <summary>
    /// The per-map lock that DELETE /maps/{id} takes exclusively (<see cref="MapSubmissionStore.CancelAsync"/>) and each
    /// flush of outcomes shared: flushes never wait for each other, a cancel waits for the flushes in flight and a
    /// flush that starts after it sees the map canceled. Held to the end of the transaction.
    /// </summary>
    internal static string CancelLock(bool shared) =>
        $"SELECT pg_advisory_xact_lock{(shared ? "_shared" : "")}(hashtextextended('jobs.map:' || $1::text, 0))";

    /// <summary>
    /// Appends a flush of item outcomes to jobs.map_result, adds them to this session's tally of the map's counts and
    /// wakes streaming readers, in one round trip and one transaction. Takes no lock on the map's row, so the flushes of
    /// a map's chunks write side by side: completion order is read by the writing transaction's id
    /// (<see cref="MapQueries.FinishedAfterAsync"/>), which needs no commit order. An item that already has an outcome
    /// keeps it (a chunk re-run while its first run still wrote: the primary key refuses the flush, which is written
    /// again with ON CONFLICT DO NOTHING); nothing is written once the map is canceled: its items
    /// without an outcome are canceled, marked or not yet.
    /// </summary>
    /// <param name="resultTuples">Per outcome, where its result held Python tuples (a JSON array of pointers), or null.</param>
    /// <param name="fence">
    /// The run writing (its first chunk and run id): nothing is written once that chunk is no longer the run's — taken
    /// over by another run after this worker lost it, whose outcomes are the ones recorded. Null only in the store's facts.
    /// </param>
    public async Task FlushAsync(Guid mapId, int[] indexes, short[] states, string?[] results, string?[] errors, CancellationToken ct, string?[]? resultTuples = null,
        (int Chunk, Guid Run)? fence = null)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        // One flush is one implicit transaction in PostgreSQL: the cancel lock is held until the outcomes commit.
        try
        {
            await WriteAsync(connection, mapId, indexes, states, results, errors, resultTuples, ct, fence: fence);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // An item of the flush has an outcome already (its chunk ran twice at once): rolled back whole, written
            // again keeping the outcomes there are. Not the usual way: ON CONFLICT's speculative insertion costs
            // PostgreSQL ~40 % more per row (pgbench, 1,000-row batches: 203–236 against 304–377 a second, COPY 303–385).
            await WriteAsync(connection, mapId, indexes, states, results, errors, resultTuples, ct, keepExisting: true, fence);
        }
    }

    /// <summary><see cref="FlushAsync"/> on <paramref name="connection"/>, in its transaction if one is open (tests hold one open).</summary>
    internal static async Task WriteAsync(NpgsqlConnection connection, Guid mapId, int[] indexes, short[] states, string?[] results, string?[] errors,
        string?[]? resultTuples, CancellationToken ct, bool keepExisting = false, (int Chunk, Guid Run)? fence = null)
    {
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new(CancelLock(shared: true)) { Parameters = { new() { Value = mapId } } });
        var write = new NpgsqlBatchCommand($"""
            WITH written AS (
                INSERT INTO jobs.map_result (map_id, index, state, result, error, tuples)
                SELECT $1, u.index, u.state, u.result::json, u.error::jsonb, u.result_tuples::jsonb
                FROM unnest($2::int[], $3::smallint[], $4::text[], $5::text[], $6::text[]) AS u(index, state, result, error, result_tuples)
                WHERE NOT EXISTS (SELECT 1 FROM jobs.map WHERE id = $1 AND cancel_requested_at IS NOT NULL)
                  {(fence is null ? "" : "AND EXISTS (SELECT 1 FROM jobs.map_chunk WHERE map_id = $1 AND chunk = $7 AND state = 'processing' AND run_id = $8)")}
                {(keepExisting ? "ON CONFLICT (map_id, index) DO NOTHING" : "")}
                RETURNING state
            ),
            counted AS (
                INSERT INTO jobs.map_tally AS t (map_id, slot, succeeded, failed, canceled)
                SELECT $1, pg_backend_pid(), count(*) FILTER (WHERE state = {MapItemStates.Succeeded}), count(*) FILTER (WHERE state = {MapItemStates.Failed}), count(*) FILTER (WHERE state = {MapItemStates.Canceled})
                FROM written HAVING count(*) > 0
                ON CONFLICT (map_id, slot) DO UPDATE SET succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed,
                    canceled = t.canceled + excluded.canceled
            )
            SELECT pg_notify('{Channels.MapProgress}', $1::text)
            """);
        write.Parameters.Add(new() { Value = mapId });
        write.Parameters.Add(new() { Value = indexes });
        write.Parameters.Add(new() { Value = states });
        write.Parameters.Add(new() { Value = results, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        write.Parameters.Add(new() { Value = errors, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        write.Parameters.Add(new() { Value = resultTuples ?? new string?[indexes.Length], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        if (fence is { } f)
        {
            write.Parameters.Add(new() { Value = f.Chunk });
            write.Parameters.Add(new() { Value = f.Run });
        }
        batch.BatchCommands.Add(write);
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// CTEs that fold the map's tallies (<see cref="FlushAsync"/>) into <c>sums</c> (s, f, c), deleting them, when
    /// <paramref name="when"/> holds, for a statement that adds <c>sums</c> to the map's counts under its row lock. A tally
    /// a flush writes meanwhile stays, and readers add it (<see cref="MapQueries.GetAsync"/>).
    /// </summary>
    internal static string FoldTallies(string when) => $"""
        folded AS (DELETE FROM jobs.map_tally WHERE map_id = $1 AND {when} RETURNING succeeded, failed, canceled),
        sums AS (SELECT coalesce(sum(succeeded), 0)::int AS s, coalesce(sum(failed), 0)::int AS f, coalesce(sum(canceled), 0)::int AS c FROM folded)
        """;

    /// <summary>
    /// Ends the run of chunks [<paramref name="firstChunk"/>, <paramref name="endChunk"/>) that
    /// <paramref name="hangfireJobId"/> holds. With <paramref name="carryItems"/> &gt; 0 (its items were quick), the same
    /// Hangfire job keeps its turn and carries on with the map's next chunks, about that many items' worth, taken in
    /// this transaction (returned as <c>Carried</c>): chunks are carried in runs, as single jobs are in batches, so a map with
    /// chunksize 1 is not a Hangfire job per item. Otherwise (or when no chunk is left to take) it gives its turn to
    /// the map's next chunks (<see cref="MapWindow"/>), returned for the caller to dispatch after the commit; the last
    /// run to end finishes the map. The map row is locked first so that two runs ending at once cannot both miss being
    /// last, nor take or give the same next chunk. <c>Ended</c> is false when the chunks were no longer this run's
    /// (<paramref name="run"/>): then nothing was given or taken.
    /// </summary>
    public async Task<(IReadOnlyList<UndispatchedChunk> Next, CarriedRun? Carried, bool Ended)> FinishRunAsync(Guid mapId, int firstChunk, int endChunk, string hangfireJobId,
        string worker, string state, TimeSpan retention, int carryItems, CancellationToken ct, Guid? run = null)
    {
        IReadOnlyList<UndispatchedChunk> next = [];
        CarriedRun? carried = null;
        bool ended;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var cmd = new NpgsqlCommand("SELECT 1 FROM jobs.map WHERE id = $1 FOR UPDATE", connection, tx) { Parameters = { new() { Value = mapId } } })
            await cmd.ExecuteNonQueryAsync(ct);
        await using (var cmd = new NpgsqlCommand("""
            UPDATE jobs.map_chunk SET state = $5, finished_at = now()
            WHERE map_id = $1 AND chunk >= $2 AND chunk < $3 AND hangfire_job_id = $4 AND state = 'processing' AND run_id IS NOT DISTINCT FROM $6
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = firstChunk });
            cmd.Parameters.Add(new() { Value = endChunk });
            cmd.Parameters.Add(new() { Value = hangfireJobId });
            cmd.Parameters.Add(new() { Value = state });
            cmd.Parameters.Add(Parameters.Uuid(run));
            ended = await cmd.ExecuteNonQueryAsync(ct) > 0;
            if (ended)
            {
                if (carryItems > 0 && state == "done") carried = await MapWindow.TakeNextRunAsync(connection, tx, mapId, hangfireJobId, worker, carryItems, run, ct);
                if (carried is null) next = await MapWindow.GiveTurnsAsync(connection, tx, mapId, ct);
            }
            // Ended by an earlier try of this call whose answer was lost, which carried on with the next chunks: they
            // are this run's, and nobody else's to run (what that try gave its turn to, the rescuer dispatches).
            else if ((carried = await MapWindow.HeldRunAsync(connection, tx, mapId, hangfireJobId, run, ct)) is not null) ended = true;
        }
        await using (var cmd = new NpgsqlCommand($"""
            WITH finished AS (
                SELECT 1 FROM jobs.map WHERE id = $1 AND state = 'processing'
                  AND NOT EXISTS (SELECT 1 FROM jobs.map_chunk WHERE map_id = $1 AND state IN ('enqueued', 'processing'))
            ),
            {FoldTallies("EXISTS (SELECT 1 FROM finished)")},
            done AS (
                UPDATE jobs.map SET state = CASE WHEN failed + sums.f > 0 THEN 'failed' ELSE 'succeeded' END,
                    succeeded = succeeded + sums.s, failed = failed + sums.f, canceled = canceled + sums.c,
                    finished_at = now(), expires_at = now() + $2
                FROM sums WHERE id = $1 AND EXISTS (SELECT 1 FROM finished)
                RETURNING id
            )
            SELECT pg_notify('{Channels.MapProgress}', id::text) FROM done
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return (next, carried, ended);
    }
}
