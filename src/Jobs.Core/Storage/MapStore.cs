using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Storage;

/// <summary>One map as stored in jobs.map.</summary>
public sealed record MapRecord(Guid Id, string Function, string Kwargs, bool Star, string Queue, int Total, int Chunksize, int Chunks,
    string State, int Succeeded, int Failed, int Canceled, DateTime CreatedAt, DateTime? FinishedAt)
{
    public int Pending => Total - Succeeded - Failed - Canceled;
}

/// <summary>A map to store: validated by the caller.</summary>
public sealed record NewMap(string Function, string Kwargs, bool Star, string Queue, int Chunksize, double? TimeoutSeconds = null);

/// <summary>What a chunk's runner needs once it owns the chunk.</summary>
public sealed record ClaimedChunk(string Function, string Kwargs, int FirstIndex, int EndIndex, int Attempts, int Crashes, string Queue, double? TimeoutSeconds);

/// <summary>A chunk whose Hangfire job must still be created.</summary>
public sealed record UndispatchedChunk(Guid MapId, int Chunk, string Function, string Queue, int FirstIndex, int EndIndex);

/// <summary>A finished item: <see cref="State"/> 1 succeeded (Result), 2 failed or 3 canceled (Error).</summary>
public sealed record MapItemOutcome(long Seq, int Index, short State, string? Result, string? Error);

public static class MapItemStates
{
    public const short Pending = 0, Succeeded = 1, Failed = 2, Canceled = 3;
}

/// <summary>
/// SQL over jobs.map, jobs.map_chunk and jobs.map_item. Items go in with binary COPY and their outcomes come
/// back in batches, so a 100,000-item map costs a handful of statements, not 100,000.
/// </summary>
public sealed class MapStore(NpgsqlDataSource dataSource)
{
    public const string ProgressChannel = "maps_progress";
    private const string Columns = "id, function, kwargs::text, star, queue, total, chunksize, chunks, state, succeeded, failed, canceled, created_at, finished_at";

    /// <summary>Stores the map, its items and chunks in one transaction (with its Idempotency-Key, if any).</summary>
    public async Task<(MapRecord Map, bool Created)> InsertAsync(NewMap map, IReadOnlyList<string> itemArgs, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        var chunks = (itemArgs.Count + map.Chunksize - 1) / map.Chunksize;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        if (idempotency is not null && await JobStore.ClaimIdempotencyKeyAsync(connection, idempotency, jobId: null, mapId: id, ct) is { } existing)
        {
            await tx.RollbackAsync(ct);
            return (await GetAsync(existing.MapId ?? Guid.Empty, ct) ?? throw new IdempotencyConflictException(idempotency.Key), false);
        }
        await using (var insert = new NpgsqlCommand("""
            WITH map AS (
                INSERT INTO jobs.map (id, function, kwargs, star, queue, total, chunksize, chunks, timeout_seconds)
                VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)
            )
            INSERT INTO jobs.map_chunk (map_id, chunk, first_index, end_index)
            SELECT $1, c, c * $7, least((c + 1) * $7, $6) FROM generate_series(0, $8 - 1) AS c
            """, connection, tx))
        {
            insert.Parameters.Add(new() { Value = id });
            insert.Parameters.Add(new() { Value = map.Function });
            insert.Parameters.Add(new() { Value = map.Kwargs });
            insert.Parameters.Add(new() { Value = map.Star });
            insert.Parameters.Add(new() { Value = map.Queue });
            insert.Parameters.Add(new() { Value = itemArgs.Count });
            insert.Parameters.Add(new() { Value = map.Chunksize });
            insert.Parameters.Add(new() { Value = chunks });
            insert.Parameters.Add(new() { Value = (object?)map.TimeoutSeconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
            await insert.ExecuteNonQueryAsync(ct);
        }
        await using (var copy = await connection.BeginBinaryImportAsync("COPY jobs.map_item (map_id, index, args) FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var i = 0; i < itemArgs.Count; i++)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(id, NpgsqlDbType.Uuid, ct);
                await copy.WriteAsync(i, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(itemArgs[i], NpgsqlDbType.Jsonb, ct);
            }
            await copy.CompleteAsync(ct);
        }
        await SubmissionOutcomeUnknownException.CommitAsync(tx, "map", [id], ct);
        try
        {
            return ((await GetAsync(id, ct))!, true);
        }
        catch (Exception e) when (DatabaseRetry.IsUnavailable(e) || e is NpgsqlException)
        {
            // Committed, so accepted, even though PostgreSQL went away just now: the map as it was stored.
            return (new MapRecord(id, map.Function, map.Kwargs, map.Star, map.Queue, itemArgs.Count, map.Chunksize, chunks, "enqueued", 0, 0, 0, DateTime.UtcNow, null), true);
        }
    }

    public async Task<MapRecord?> GetAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.map WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    public async Task MarkChunksDispatchedAsync(Guid mapId, int[] chunks, string[] hangfireJobIds, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.map_chunk c SET dispatched_at = now(), hangfire_job_id = coalesce(c.hangfire_job_id, d.hangfire_job_id)
            FROM unnest($2::int[], $3::text[]) AS d(chunk, hangfire_job_id)
            WHERE c.map_id = $1 AND c.chunk = d.chunk AND c.dispatched_at IS NULL
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = chunks });
        cmd.Parameters.Add(new() { Value = hangfireJobIds });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<UndispatchedChunk>> FindUndispatchedChunksAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT c.map_id, c.chunk, m.function, m.queue, c.first_index, c.end_index
            FROM jobs.map_chunk c JOIN jobs.map m ON m.id = c.map_id
            WHERE c.dispatched_at IS NULL AND c.state = 'enqueued' AND c.created_at < now() - $1
            ORDER BY c.created_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<UndispatchedChunk>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            list.Add(new(reader.GetGuid(0), reader.GetInt32(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4), reader.GetInt32(5)));
        return list;
    }

    /// <summary>Takes a chunk for one run, like <see cref="JobStore.ClaimAsync"/>: the first Hangfire job to claim it owns it.</summary>
    public async Task<ClaimedChunk?> ClaimChunkAsync(Guid mapId, int chunk, string hangfireJobId, string worker, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            WITH claimed AS (
                UPDATE jobs.map_chunk SET state = 'processing', attempts = attempts + 1, started_at = now(), worker = $4,
                    crashes = crashes + CASE WHEN state = 'processing' THEN 1 ELSE 0 END,
                    hangfire_job_id = $3, dispatched_at = coalesce(dispatched_at, now())
                WHERE map_id = $1 AND chunk = $2 AND (hangfire_job_id IS NULL OR hangfire_job_id = $3)
                  AND state IN ('enqueued', 'processing')
                  AND NOT EXISTS (SELECT 1 FROM jobs.map WHERE id = $1 AND cancel_requested_at IS NOT NULL)
                RETURNING first_index, end_index, attempts, crashes
            ),
            started AS (UPDATE jobs.map SET state = 'processing' WHERE id = $1 AND state = 'enqueued' AND EXISTS (SELECT 1 FROM claimed))
            SELECT m.function, m.kwargs::text, c.first_index, c.end_index, c.attempts, c.crashes, m.queue, m.timeout_seconds FROM claimed c, jobs.map m WHERE m.id = $1
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = chunk });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new ClaimedChunk(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4), reader.GetInt32(5),
                reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetDouble(7))
            : null;
    }

    /// <summary>A graceful stop: the chunk goes back to 'enqueued' (uncounted); its re-run does the items left.</summary>
    public async Task ReleaseChunkAsync(Guid mapId, int chunk, string hangfireJobId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.map_chunk SET state = 'enqueued' WHERE map_id = $1 AND chunk = $2 AND hangfire_job_id = $3 AND state = 'processing'
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = chunk });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The chunk's items that have no outcome yet (all of them, unless this is a re-run after a crash).</summary>
    public async Task<IReadOnlyList<(int Index, string Args)>> PendingItemsAsync(Guid mapId, int first, int end, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT index, args::text FROM jobs.map_item
            WHERE map_id = $1 AND index >= $2 AND index < $3 AND state = 0 ORDER BY index
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = first });
        cmd.Parameters.Add(new() { Value = end });
        var list = new List<(int, string)>(end - first);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add((reader.GetInt32(0), reader.GetString(1)));
        return list;
    }

    /// <summary>
    /// Writes a batch of item outcomes, bumps the map's counters and wakes streaming readers, in one round trip and
    /// one transaction. The map's row is locked before the outcomes take their completion numbers (seq), so per map
    /// seq order is commit order: a completion-order stream pages by seq and never passes over an outcome that
    /// commits later with a lower number (it did: streams stopped a few items short and never ended).
    /// </summary>
    public async Task FlushAsync(Guid mapId, int[] indexes, short[] states, string?[] results, string?[] errors, CancellationToken ct)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new("SELECT 1 FROM jobs.map WHERE id = $1 FOR UPDATE") { Parameters = { new() { Value = mapId } } });
        var write = new NpgsqlBatchCommand($"""
            WITH written AS (
                UPDATE jobs.map_item m SET state = u.state, result = u.result::jsonb, error = u.error::jsonb, seq = nextval('jobs.map_item_seq')
                FROM unnest($2::int[], $3::smallint[], $4::text[], $5::text[]) AS u(index, state, result, error)
                WHERE m.map_id = $1 AND m.index = u.index AND m.state = 0
                RETURNING u.state
            ),
            counted AS (
                UPDATE jobs.map SET
                    succeeded = succeeded + (SELECT count(*) FROM written WHERE state = 1),
                    failed    = failed    + (SELECT count(*) FROM written WHERE state = 2),
                    canceled  = canceled  + (SELECT count(*) FROM written WHERE state = 3)
                WHERE id = $1
            )
            SELECT pg_notify('{ProgressChannel}', $1::text)
            """);
        write.Parameters.Add(new() { Value = mapId });
        write.Parameters.Add(new() { Value = indexes });
        write.Parameters.Add(new() { Value = states });
        write.Parameters.Add(new() { Value = results, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        write.Parameters.Add(new() { Value = errors, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        batch.BatchCommands.Add(write);
        // One batch is one implicit transaction in PostgreSQL: the lock is held until the outcomes commit.
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Ends a chunk; the last chunk to end finishes the map. The map row is locked first so that two chunks
    /// ending at once cannot both miss being last.
    /// </summary>
    public async Task FinishChunkAsync(Guid mapId, int chunk, string hangfireJobId, string state, TimeSpan retention, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var cmd = new NpgsqlCommand("SELECT 1 FROM jobs.map WHERE id = $1 FOR UPDATE", connection, tx) { Parameters = { new() { Value = mapId } } })
            await cmd.ExecuteNonQueryAsync(ct);
        await using (var cmd = new NpgsqlCommand("""
            UPDATE jobs.map_chunk SET state = $4, finished_at = now()
            WHERE map_id = $1 AND chunk = $2 AND hangfire_job_id = $3 AND state = 'processing'
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = chunk });
            cmd.Parameters.Add(new() { Value = hangfireJobId });
            cmd.Parameters.Add(new() { Value = state });
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await using (var cmd = new NpgsqlCommand($"""
            WITH done AS (
                UPDATE jobs.map SET state = CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END,
                    finished_at = now(), expires_at = now() + $2
                WHERE id = $1 AND state = 'processing'
                  AND NOT EXISTS (SELECT 1 FROM jobs.map_chunk WHERE map_id = $1 AND state IN ('enqueued', 'processing'))
                RETURNING id
            )
            SELECT pg_notify('{ProgressChannel}', id::text) FROM done
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    public async Task<bool> IsCancelRequestedAsync(Guid mapId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT cancel_requested_at IS NOT NULL FROM jobs.map WHERE id = $1");
        cmd.Parameters.Add(new() { Value = mapId });
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>
    /// DELETE /maps/{id}: every item without an outcome is canceled, the map ends 'canceled', and the Hangfire
    /// jobs of its unfinished chunks are returned so the caller can stop them. Null for an unknown map;
    /// <c>Canceled = false</c> when it had already finished.
    /// </summary>
    public async Task<(bool Canceled, string State, IReadOnlyList<string> HangfireJobs)?> CancelAsync(Guid mapId, string errorJson, TimeSpan retention, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        string state;
        await using (var cmd = new NpgsqlCommand("SELECT state FROM jobs.map WHERE id = $1 FOR UPDATE", connection, tx) { Parameters = { new() { Value = mapId } } })
        {
            if (await cmd.ExecuteScalarAsync(ct) is not string s) return null;
            state = s;
        }
        if (state is not ("enqueued" or "processing")) return (false, state, []);
        var hangfireJobs = new List<string>();
        await using (var cmd = new NpgsqlCommand($"""
            WITH items AS (
                UPDATE jobs.map_item SET state = 3, error = $2::jsonb, seq = nextval('jobs.map_item_seq')
                WHERE map_id = $1 AND state = 0 RETURNING 1
            ),
            chunks AS (
                UPDATE jobs.map_chunk SET state = 'canceled', finished_at = now()
                WHERE map_id = $1 AND state IN ('enqueued', 'processing') RETURNING hangfire_job_id
            ),
            map AS (
                UPDATE jobs.map SET state = 'canceled', cancel_requested_at = now(), finished_at = now(), expires_at = now() + $3,
                    canceled = canceled + (SELECT count(*) FROM items)
                WHERE id = $1
            )
            SELECT hangfire_job_id FROM chunks WHERE hangfire_job_id IS NOT NULL
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = errorJson });
            cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) hangfireJobs.Add(reader.GetString(0));
        }
        await using (var notify = new NpgsqlCommand($"SELECT pg_notify('{ProgressChannel}', $1::text)", connection, tx) { Parameters = { new() { Value = mapId } } })
            await notify.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return (true, "canceled", hangfireJobs);
    }

    /// <summary>The lowest-indexed failed item: what <c>map().get()</c> raises.</summary>
    public async Task<(int Index, string Error)?> FirstFailureAsync(Guid mapId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT index, error::text FROM jobs.map_item WHERE map_id = $1 AND state IN (2, 3) ORDER BY state = 3, index LIMIT 1
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? (reader.GetInt32(0), reader.GetString(1)) : null;
    }

    /// <summary>Every result as JSON text, in input order, streamed from the database.</summary>
    public async IAsyncEnumerable<string> ResultsAsync(Guid mapId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.map_item WHERE map_id = $1 ORDER BY index");
        cmd.Parameters.Add(new() { Value = mapId });
        await using var reader = await cmd.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct);
        while (await reader.ReadAsync(ct)) yield return reader.GetString(0);
    }

    /// <summary>Finished items from <paramref name="fromIndex"/> on, in index order (the caller keeps only the unbroken run).</summary>
    public Task<IReadOnlyList<MapItemOutcome>> FinishedFromIndexAsync(Guid mapId, int fromIndex, int limit, CancellationToken ct) =>
        OutcomesAsync("index >= $2 AND state <> 0 ORDER BY index", mapId, fromIndex, limit, ct);

    /// <summary>Items finished after <paramref name="afterSeq"/>, in completion order.</summary>
    public Task<IReadOnlyList<MapItemOutcome>> FinishedAfterSeqAsync(Guid mapId, long afterSeq, int limit, CancellationToken ct) =>
        OutcomesAsync("seq > $2 ORDER BY seq", mapId, afterSeq, limit, ct);

    private async Task<IReadOnlyList<MapItemOutcome>> OutcomesAsync(string condition, Guid mapId, long from, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT seq, index, state, result::text, error::text FROM jobs.map_item WHERE map_id = $1 AND {condition} LIMIT $3
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = condition.StartsWith("index", StringComparison.Ordinal) ? (object)(int)from : from });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<MapItemOutcome>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            list.Add(new(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt16(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
        return list;
    }

    /// <summary>Deletes finished maps past their retention, with their chunks and items.</summary>
    public async Task<int> PurgeExpiredAsync(int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            WITH gone AS (
                DELETE FROM jobs.map WHERE id IN (SELECT id FROM jobs.map WHERE expires_at < now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                RETURNING id
            ),
            chunks AS (DELETE FROM jobs.map_chunk WHERE map_id IN (SELECT id FROM gone)),
            items AS (DELETE FROM jobs.map_item WHERE map_id IN (SELECT id FROM gone))
            SELECT count(*) FROM gone
            """);
        cmd.Parameters.Add(new() { Value = limit });
        return (int)(long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static MapRecord Read(NpgsqlDataReader r) => new(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetBoolean(3), r.GetString(4),
        r.GetInt32(5), r.GetInt32(6), r.GetInt32(7), r.GetString(8), r.GetInt32(9), r.GetInt32(10), r.GetInt32(11), r.GetDateTime(12),
        r.IsDBNull(13) ? null : r.GetDateTime(13));
}
