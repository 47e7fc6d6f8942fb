using Jobs.Core.Database;
using Jobs.Core.Idempotency;
using Jobs.Core.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Maps;

/// <summary>
/// What the API does to a map: store it with its items and chunks (items go in with binary COPY, so a 100,000-item map
/// costs a handful of statements; the first <see cref="NewMap.Window"/> chunks get their turn, see <see cref="MapWindow"/>), cancel it.
/// </summary>
public sealed class MapSubmissionStore(NpgsqlDataSource dataSource, MapQueries queries)
{
    /// <summary>Stores the map, its items and chunks in one transaction (with its Idempotency-Key, if any).</summary>
    /// <param name="itemTuples">Per item, where its call's values held Python tuples (<c>{"args", "kwargs"}</c> JSON), or null for none at all.</param>
    public async Task<(MapRecord Map, bool Created)> InsertAsync(NewMap map, IReadOnlyList<string> itemArgs, IdempotencyClaim? idempotency, CancellationToken ct,
        IReadOnlyList<string?>? itemTuples = null)
    {
        var id = Guid.CreateVersion7();
        var chunks = (itemArgs.Count + map.Chunksize - 1) / map.Chunksize;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        if (idempotency is not null && await IdempotencyStore.TakeAsync(connection, idempotency, jobId: null, mapId: id, ct) is { } existing)
        {
            await tx.RollbackAsync(ct);
            return (await queries.GetAsync(existing.MapId ?? Guid.Empty, ct) ?? throw new IdempotencyConflictException(idempotency.Key), false);
        }
        await using (var insert = new NpgsqlCommand("""
            WITH map AS (
                INSERT INTO jobs.map (id, function, kwargs, star, queue, total, chunksize, chunks, timeout_seconds, dispatch_window, next_chunk,
                    state, finished_at, expires_at)
                -- A map with no items is finished as it is stored: succeeded, with no chunk (Pool.map(f, []) is []).
                SELECT $1, $2, $3::json, $4, $5, $6, $7, $8, $9, $10, least($10, $8),
                    CASE WHEN $6 = 0 THEN 'succeeded' ELSE 'enqueued' END, CASE WHEN $6 = 0 THEN now() END, CASE WHEN $6 = 0 THEN now() + $11 END
            )
            INSERT INTO jobs.map_chunk (map_id, chunk, first_index, end_index, dispatched_at)
            SELECT $1, c, c * $7, least((c + 1) * $7, $6), CASE WHEN c < $10 THEN now() END FROM generate_series(0, $8 - 1) AS c
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
            insert.Parameters.Add(new() { Value = map.Window });
            insert.Parameters.Add(new() { Value = map.Retention ?? TimeSpan.FromDays(7), NpgsqlDbType = NpgsqlDbType.Interval });
            await insert.ExecuteNonQueryAsync(ct);
        }
        await using (var copy = await connection.BeginBinaryImportAsync(
            $"COPY jobs.map_item (map_id, index, args{(itemTuples is null ? "" : ", tuples")}) FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var i = 0; i < itemArgs.Count; i++)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(id, NpgsqlDbType.Uuid, ct);
                await copy.WriteAsync(i, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(itemArgs[i], NpgsqlDbType.Jsonb, ct);
                if (itemTuples is null) continue;
                if (itemTuples[i] is { } tuples) await copy.WriteAsync(tuples, NpgsqlDbType.Jsonb, ct);
                else await copy.WriteNullAsync(ct);
            }
            await copy.CompleteAsync(ct);
        }
        await SubmissionOutcomeUnknownException.CommitAsync(tx, "map", [id], ct);
        try
        {
            return ((await queries.GetAsync(id, ct))!, true);
        }
        catch (Exception e) when (DatabaseRetry.IsUnavailable(e) || e is NpgsqlException)
        {
            // Committed, so accepted, even though PostgreSQL went away just now: the map as it was stored.
            return (new MapRecord(id, map.Function, map.Kwargs, map.Star, map.Queue, itemArgs.Count, map.Chunksize, chunks,
                itemArgs.Count == 0 ? "succeeded" : "enqueued", 0, 0, 0, DateTime.UtcNow, itemArgs.Count == 0 ? DateTime.UtcNow : null), true);
        }
    }

    /// <summary>The chunks a new map's window starts with (given their turn by <see cref="InsertAsync"/>), for the submitter to dispatch.</summary>
    public static IReadOnlyList<UndispatchedChunk> FirstTurns(MapRecord map, int window) =>
        [.. Enumerable.Range(0, Math.Min(window, map.Chunks)).Select(c =>
            new UndispatchedChunk(map.Id, c, map.Function, map.Queue, c * map.Chunksize, Math.Min((c + 1) * map.Chunksize, map.Total)))];

    /// <summary>
    /// DELETE /maps/{id}, in time independent of the map's size: the map ends 'canceled' with every item without an
    /// outcome counted canceled, its chunks that have their turn end 'canceled' and their Hangfire jobs (at most its
    /// window: the others never had one) are returned so the caller can stop them. The items themselves are marked by
    /// <see cref="SettleCanceledAsync"/> afterwards; until then readers take them as canceled (<see cref="MapQueries"/>),
    /// and a running chunk can no longer write an outcome (<see cref="MapExecutionStore.FlushAsync"/>).
    /// Null for an unknown map; <c>Canceled = false</c> when it had already finished.
    /// </summary>
    public async Task<(bool Canceled, string State, IReadOnlyList<string> HangfireJobs)?> CancelAsync(Guid mapId, TimeSpan retention, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        string state;
        // The flushes of outcomes in flight commit first; those after see the map canceled and write nothing.
        await using (var cmd = new NpgsqlCommand(MapExecutionStore.CancelLock(shared: false), connection, tx) { Parameters = { new() { Value = mapId } } })
            await cmd.ExecuteNonQueryAsync(ct);
        await using (var cmd = new NpgsqlCommand("SELECT state FROM jobs.map WHERE id = $1 FOR UPDATE", connection, tx) { Parameters = { new() { Value = mapId } } })
        {
            if (await cmd.ExecuteScalarAsync(ct) is not string s) return null;
            state = s;
        }
        if (state is not ("enqueued" or "processing")) return (false, state, []);
        List<string> hangfireJobs;
        await using (var cmd = new NpgsqlCommand($"""
            WITH chunks AS (
                UPDATE jobs.map_chunk SET state = 'canceled', finished_at = now()
                WHERE map_id = $1 AND state IN ('enqueued', 'processing') AND dispatched_at IS NOT NULL RETURNING hangfire_job_id
            ),
            {MapExecutionStore.FoldTallies("true")},
            map AS (
                UPDATE jobs.map SET state = 'canceled', cancel_requested_at = now(), finished_at = now(), expires_at = now() + $2,
                    succeeded = succeeded + sums.s, failed = failed + sums.f, canceled = total - succeeded - sums.s - failed - sums.f, unsettled_from = 0
                FROM sums WHERE id = $1
            )
            SELECT hangfire_job_id FROM chunks WHERE hangfire_job_id IS NOT NULL
            """, connection, tx))
        {
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
            hangfireJobs = await cmd.ReadListAsync(r => r.GetString(0), ct);
        }
        await using (var notify = new NpgsqlCommand($"SELECT pg_notify('{Channels.MapProgress}', $1::text)", connection, tx) { Parameters = { new() { Value = mapId } } })
            await notify.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return (true, "canceled", hangfireJobs);
    }

    /// <summary>Items one statement of <see cref="SettleCanceledAsync"/> marks: about 0.1–0.3 s of work, so a map's row lock is never held long.</summary>
    public const int SettleBatch = 20_000;

    /// <summary>
    /// Marks the items of a canceled map that have no outcome canceled (appended to jobs.map_result, so streams send
    /// them), and its chunks still waiting, in batches from <c>unsettled_from</c> on. Safe to run twice at once (each
    /// batch holds the map's row lock) and to resume after a crash. Returns how many items it marked.
    /// </summary>
    public async Task<int> SettleCanceledAsync(Guid mapId, CancellationToken ct)
    {
        var marked = 0;
        while (true)
        {
            await using var cmd = dataSource.CreateCommand($"""
                WITH m AS (
                    SELECT id, unsettled_from AS lo, least(total, unsettled_from + $3) AS hi, total FROM jobs.map
                    WHERE id = $1 AND unsettled_from IS NOT NULL FOR UPDATE
                ),
                items AS (
                    INSERT INTO jobs.map_result (map_id, index, state, error)
                    SELECT $1, i.index, {MapItemStates.Canceled}, $2::jsonb FROM jobs.map_item i, m
                    WHERE i.map_id = $1 AND i.index >= m.lo AND i.index < m.hi
                    ON CONFLICT (map_id, index) DO NOTHING -- items with an outcome keep it
                    RETURNING 1
                ),
                chunks AS (
                    UPDATE jobs.map_chunk c SET state = 'canceled', finished_at = now() FROM m
                    WHERE c.map_id = $1 AND c.state IN ('enqueued', 'processing') AND c.end_index <= m.hi
                ),
                advanced AS (UPDATE jobs.map AS map SET unsettled_from = CASE WHEN m.hi >= m.total THEN NULL ELSE m.hi END FROM m WHERE map.id = m.id)
                SELECT (SELECT count(*) FROM m)::int, (SELECT count(*) FROM items)::int, pg_notify('{Channels.MapProgress}', $1::text)
                """);
            cmd.Parameters.Add(new() { Value = mapId });
            cmd.Parameters.Add(new() { Value = MapQueries.CanceledByRequest });
            cmd.Parameters.Add(new() { Value = SettleBatch });
            var (left, items) = await cmd.ReadFirstOrDefaultAsync(r => (r.GetInt32(0), r.GetInt32(1)), ct);
            if (left == 0) return marked;
            marked += items;
        }
    }

    /// <summary>Deletes finished maps past their retention, with their chunks, items, outcomes and tallies.</summary>
    public async Task<int> PurgeExpiredAsync(int limit, CancellationToken ct)
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
}
