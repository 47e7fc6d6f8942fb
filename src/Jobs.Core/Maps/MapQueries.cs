using Jobs.Core.Database;
using Jobs.Core.Functions;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Maps;

/// <summary>Reads of a map and its items (GET /maps/{id}, its results and streams). Item outcomes notify <see cref="Queue.Channels.MapProgress"/>.</summary>
public sealed class MapQueries(NpgsqlDataSource dataSource)
{
    /// <summary>The map's counts are its own plus the tallies of the flushes not yet folded into them (<see cref="MapExecutionStore.FlushAsync"/>).</summary>
    internal const string Columns = """
        m.id, m.function, m.kwargs::text, m.star, m.queue, m.total, m.chunksize, m.chunks, m.state,
        m.succeeded + coalesce(t.s, 0), m.failed + coalesce(t.f, 0), m.canceled + coalesce(t.c, 0), m.created_at, m.finished_at
        """;

    /// <summary>Chunks with their turn and unfinished, as the invariant check reads them (the columns of <see cref="SingleJobs.JobQueries.UnfinishedForInvariants"/>).</summary>
    internal const string UnfinishedChunksForInvariants = """
        SELECT 'map chunk', map_id::text || '/' || chunk, state, hangfire_job_id, created_at, dispatched_at FROM jobs.map_chunk
        WHERE state IN ('enqueued', 'processing') AND dispatched_at IS NOT NULL LIMIT 20000
        """;

    /// <summary>Unfinished maps with chunks waiting for a turn and none having one (the same columns).</summary>
    internal const string StalledMapsForInvariants = """
        SELECT 'map', id::text, state, NULL, created_at, created_at FROM jobs.map m
        WHERE state IN ('enqueued', 'processing') AND cancel_requested_at IS NULL AND next_chunk < chunks
          AND NOT EXISTS (SELECT 1 FROM jobs.map_chunk c
                          WHERE c.map_id = m.id AND c.state IN ('enqueued', 'processing') AND c.dispatched_at IS NOT NULL)
        LIMIT 20000
        """;

    /// <summary>Chunks with their turn and unfinished, as the queue figures read them (the columns of <see cref="SingleJobs.JobQueries.UnfinishedForQueueFigures"/>).</summary>
    public const string UnfinishedChunksForQueueFigures = """
        SELECT m.queue, c.state, c.attempts, c.dispatched_at FROM jobs.map_chunk c JOIN jobs.map m ON m.id = c.map_id
        WHERE c.state IN ('enqueued', 'processing') AND c.dispatched_at IS NOT NULL AND ($1::text IS NULL OR m.queue = $1)
        """;

    public async Task<MapRecord?> GetAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {Columns} FROM jobs.map m
            LEFT JOIN LATERAL (SELECT sum(succeeded)::int AS s, sum(failed)::int AS f, sum(canceled)::int AS c FROM jobs.map_tally WHERE map_id = m.id) t ON true
            WHERE m.id = $1
            """);
        cmd.Parameters.Add(new() { Value = id });
        return await cmd.ReadFirstOrDefaultAsync(Read, ct);
    }

    /// <summary>The error of an item of a map canceled by DELETE /maps/{id}.</summary>
    public static readonly string CanceledByRequest = ErrorJson.Of(typeof(JobCanceledException), "Canceled by request.");

    /// <summary>
    /// The lowest-indexed failed item, else the lowest-indexed canceled one: what <c>map().get()</c> raises. An item of
    /// a canceled map not yet marked (<see cref="MapSubmissionStore.SettleCanceledAsync"/>) counts as canceled.
    /// </summary>
    public async Task<(int Index, string Error)?> FirstFailureAsync(Guid mapId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH failed AS (SELECT index, error::text AS error FROM jobs.map_result WHERE map_id = $1 AND state = {MapItemStates.Failed} ORDER BY index LIMIT 1),
            canceled AS (SELECT index, error::text AS error FROM jobs.map_result WHERE map_id = $1 AND state = {MapItemStates.Canceled} ORDER BY index LIMIT 1),
            -- A canceled map's first item without an outcome: where the outcomes' indexes, in order, first leave 0, 1, 2, …
            -- (range reads of the primary key only: no anti-join for the planner to get wrong).
            unmarked AS (
                SELECT g.n AS index, $2::text AS error FROM jobs.map m, LATERAL (SELECT coalesce(
                    (SELECT o.n FROM (SELECT index, (row_number() OVER (ORDER BY index))::int - 1 AS n FROM jobs.map_result WHERE map_id = $1) o
                     WHERE o.index <> o.n LIMIT 1),
                    (SELECT count(*)::int FROM jobs.map_result WHERE map_id = $1)) AS n) g
                WHERE m.id = $1 AND m.cancel_requested_at IS NOT NULL AND g.n < m.total
            )
            SELECT index, error FROM failed
            UNION ALL
            (SELECT index, error FROM (SELECT * FROM canceled UNION ALL SELECT * FROM unmarked) c ORDER BY index LIMIT 1)
            LIMIT 1
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = CanceledByRequest });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? (reader.GetInt32(0), reader.GetString(1)) : null;
    }

    /// <summary>
    /// Every result's JSON text, in input order and separated by commas, copied from the database to
    /// <paramref name="output"/> as it arrives: neither the results nor one large result are held whole.
    /// </summary>
    public async Task CopyResultsAsync(Guid mapId, Stream output, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.map_result WHERE map_id = $1 ORDER BY index");
        cmd.Parameters.Add(new() { Value = mapId });
        await cmd.CopyTextAsync(output, ct, separator: ",");
    }

    /// <summary>
    /// Where the map's results held Python tuples: a JSON object from item index to its result's pointers (only items
    /// with any), or null when none did.
    /// </summary>
    public async Task<string?> ResultTuplesAsync(Guid mapId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT jsonb_object_agg(index::text, tuples)::text FROM jobs.map_result WHERE map_id = $1 AND tuples IS NOT NULL
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>Results up to this many bytes come with <see cref="MapItemOutcome"/>; larger ones are copied by <see cref="CopyItemResultAsync"/>.</summary>
    public const int InlineResultBytes = SingleJobs.JobQueries.InlineResultBytes;

    /// <summary>Copies one item's stored result to <paramref name="output"/> as it arrives (<c>null</c> if there is none).</summary>
    public async Task CopyItemResultAsync(Guid mapId, int index, Stream output, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.map_result WHERE map_id = $1 AND index = $2");
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = index });
        await cmd.CopyTextAsync(output, ct, ifNone: "null");
    }

    /// <summary>Finished items from <paramref name="fromIndex"/> on, in index order (the caller keeps only the unbroken run).</summary>
    public async Task<IReadOnlyList<MapItemOutcome>> FinishedFromIndexAsync(Guid mapId, int fromIndex, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Outcome} FROM jobs.map_result WHERE map_id = $1 AND index >= $2 ORDER BY index LIMIT $3");
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = fromIndex });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(ReadOutcome, ct);
    }

    /// <summary>
    /// Items finished after <paramref name="after"/> (the last outcome read: <see cref="MapItemOutcome.Xid"/>,
    /// <see cref="MapItemOutcome.Index"/>; (0, -1) for the start), in completion order: by the id of the transaction that
    /// wrote them, then index. Only outcomes of transactions older than every one still running are read (below this
    /// snapshot's xmin): a transaction still running, or one that commits later, always has a larger id than those, so
    /// no outcome can turn up behind <paramref name="after"/>, however the map's flushes interleave their commits.
    /// <c>HeldBack</c>: outcomes that committed after an older transaction that is still running were left for later.
    /// </summary>
    public async Task<(IReadOnlyList<MapItemOutcome> Outcomes, bool HeldBack)> FinishedAfterAsync(Guid mapId, (long Xid, int Index) after, int limit,
        CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {Outcome}, xid < pg_snapshot_xmin(pg_current_snapshot()) FROM jobs.map_result
            WHERE map_id = $1 AND (xid, index) > ($2::text::xid8, $3)
            ORDER BY xid, index LIMIT $4
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = after.Xid.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new() { Value = after.Index });
        cmd.Parameters.Add(new() { Value = limit });
        var outcomes = new List<MapItemOutcome>();
        var heldBack = false;
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        // Safe rows come first: they are the ones with the smaller transaction ids.
        while (await reader.ReadAsync(ct))
        {
            if (!reader.GetBoolean(7))
            {
                heldBack = true;
                break;
            }
            outcomes.Add(ReadOutcome(reader));
        }
        return (outcomes, heldBack);
    }

    private static readonly string Outcome = $"""
        xid::text::bigint, index, state, CASE WHEN octet_length(result::text) <= {InlineResultBytes} THEN result::text END, error::text,
        result IS NOT NULL AND octet_length(result::text) > {InlineResultBytes}, tuples::text
        """;

    private static MapItemOutcome ReadOutcome(NpgsqlDataReader reader) => new(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt16(2), reader.StringOrNull(3),
        reader.StringOrNull(4), reader.GetBoolean(5), reader.StringOrNull(6));

    internal static MapRecord Read(NpgsqlDataReader r) => new(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetBoolean(3), r.GetString(4),
        r.GetInt32(5), r.GetInt32(6), r.GetInt32(7), r.GetString(8), r.GetInt32(9), r.GetInt32(10), r.GetInt32(11), r.GetDateTime(12),
        r.IsDBNull(13) ? null : r.GetDateTime(13));

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

    /// <summary>Whether DELETE /maps/{id} canceled the map (a run told to stop tells a cancel from a shutdown by it).</summary>
    public async Task<bool> IsCancelRequestedAsync(Guid mapId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT cancel_requested_at IS NOT NULL FROM jobs.map WHERE id = $1");
        cmd.Parameters.Add(new() { Value = mapId });
        return await cmd.ExecuteScalarAsync(ct) is true;
    }
}
