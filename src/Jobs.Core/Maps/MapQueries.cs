using Jobs.Core.Database;
using Jobs.Core.Functions;
using Npgsql;

namespace Jobs.Core.Maps;

/// <summary>Reads of a map and its items (GET /maps/{id}, its results and streams). Item outcomes send NOTIFY <see cref="ProgressChannel"/>.</summary>
public sealed class MapQueries(NpgsqlDataSource dataSource)
{
    public const string ProgressChannel = "maps_progress";

    /// <summary>The map's counts are its own plus the tallies of the batches not yet folded into them (<see cref="MapExecutionStore.FlushAsync"/>).</summary>
    internal const string Columns = """
        m.id, m.function, m.kwargs::text, m.star, m.queue, m.total, m.chunksize, m.chunks, m.state,
        m.succeeded + coalesce(t.s, 0), m.failed + coalesce(t.f, 0), m.canceled + coalesce(t.c, 0), m.created_at, m.finished_at
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
        await using var cmd = dataSource.CreateCommand("""
            WITH failed AS (SELECT index, error::text AS error FROM jobs.map_result WHERE map_id = $1 AND state = 2 ORDER BY index LIMIT 1),
            canceled AS (SELECT index, error::text AS error FROM jobs.map_result WHERE map_id = $1 AND state = 3 ORDER BY index LIMIT 1),
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
    /// no outcome can turn up behind <paramref name="after"/>, however the map's batches interleave their commits.
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
}
