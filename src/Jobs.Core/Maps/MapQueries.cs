using Jobs.Core.Database;
using Jobs.Core.Functions;
using Npgsql;

namespace Jobs.Core.Maps;

/// <summary>Reads of a map and its items (GET /maps/{id}, its results and streams). Item outcomes send NOTIFY <see cref="ProgressChannel"/>.</summary>
public sealed class MapQueries(NpgsqlDataSource dataSource)
{
    public const string ProgressChannel = "maps_progress";

    internal const string Columns = "id, function, kwargs::text, star, queue, total, chunksize, chunks, state, succeeded, failed, canceled, created_at, finished_at";

    public async Task<MapRecord?> GetAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.map WHERE id = $1");
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
            (SELECT index, error::text FROM jobs.map_item WHERE map_id = $1 AND state = 2 ORDER BY index LIMIT 1)
            UNION ALL
            (SELECT index, coalesce(error::text, $2) FROM jobs.map_item
             WHERE map_id = $1 AND (state = 3 OR state = 0 AND EXISTS (SELECT 1 FROM jobs.map WHERE id = $1 AND cancel_requested_at IS NOT NULL))
             ORDER BY index LIMIT 1)
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
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.map_item WHERE map_id = $1 ORDER BY index");
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
            SELECT jsonb_object_agg(index::text, tuples -> 'result')::text FROM jobs.map_item WHERE map_id = $1 AND tuples ? 'result'
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>Results up to this many bytes come with <see cref="MapItemOutcome"/>; larger ones are copied by <see cref="CopyItemResultAsync"/>.</summary>
    public const int InlineResultBytes = Jobs.JobQueries.InlineResultBytes;

    /// <summary>Copies one item's stored result to <paramref name="output"/> as it arrives (<c>null</c> if there is none).</summary>
    public async Task CopyItemResultAsync(Guid mapId, int index, Stream output, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.map_item WHERE map_id = $1 AND index = $2");
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = index });
        await cmd.CopyTextAsync(output, ct, ifNone: "null");
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
            SELECT seq, index, state, CASE WHEN octet_length(result::text) <= {InlineResultBytes} THEN result::text END, error::text,
                   result IS NOT NULL AND octet_length(result::text) > {InlineResultBytes}, (tuples -> 'result')::text
            FROM jobs.map_item WHERE map_id = $1 AND {condition} LIMIT $3
            """);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = condition.StartsWith("index", StringComparison.Ordinal) ? (object)(int)from : from });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => new MapItemOutcome(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt16(2), reader.StringOrNull(3), reader.StringOrNull(4), reader.GetBoolean(5), reader.StringOrNull(6)), ct);
    }

    internal static MapRecord Read(NpgsqlDataReader r) => new(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetBoolean(3), r.GetString(4),
        r.GetInt32(5), r.GetInt32(6), r.GetInt32(7), r.GetString(8), r.GetInt32(9), r.GetInt32(10), r.GetInt32(11), r.GetDateTime(12),
        r.IsDBNull(13) ? null : r.GetDateTime(13));
}
