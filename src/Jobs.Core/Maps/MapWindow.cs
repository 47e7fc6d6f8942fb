using Jobs.Core.Database;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Maps;

/// <summary>
/// A map's fair share of the worker slots. At most <c>jobs.map.dispatch_window</c> chunks of a map have their turn
/// at once (handed to Hangfire, queued or running): the submitter gives the first ones theirs, and each chunk that
/// ends gives the next chunk its turn in the transaction that ends it (so two chunks ending at once, both holding the
/// map's row lock in turn, never give the same chunk twice, nor more than the window). The next chunk's Hangfire job
/// is created after that commit, so it enters the queue behind whatever anyone else queued while the map ran: a lone
/// job starts at the next free slot, not after the map. A canceled map has at most a window of Hangfire jobs to delete.
/// <para>
/// A chunk given its turn whose Hangfire job was never recorded (its giver died between the commit and the
/// creation) is re-dispatched by the workers' rescuer after Jobs:DispatchGracePeriod; should the first Hangfire
/// job exist after all, the chunk's claim lets only one of them run it.
/// </para>
/// </summary>
public sealed class MapWindow(NpgsqlDataSource dataSource, MapDispatcher dispatcher, ILogger<MapWindow> logger)
{
    /// <summary>
    /// Gives the next chunks of the map their turn, as many as its window has room for, and returns them. The caller
    /// holds the map's row lock in <paramref name="tx"/> and creates their Hangfire jobs after committing.
    /// </summary>
    internal static async Task<IReadOnlyList<UndispatchedChunk>> GiveTurnsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid mapId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            WITH m AS (
                SELECT id, function, queue, next_chunk, least(chunks, next_chunk + greatest(0, dispatch_window - (
                    -- Turns, not chunks: a Hangfire job carrying a run of chunks holds one turn.
                    SELECT count(DISTINCT coalesce(c.hangfire_job_id, c.chunk::text)) FROM jobs.map_chunk c
                    WHERE c.map_id = $1 AND c.state IN ('enqueued', 'processing') AND c.dispatched_at IS NOT NULL)))::int AS upto
                FROM jobs.map
                WHERE id = $1 AND state IN ('enqueued', 'processing') AND cancel_requested_at IS NULL AND next_chunk < chunks
            ),
            advanced AS (UPDATE jobs.map AS map SET next_chunk = m.upto FROM m WHERE map.id = m.id AND m.upto > m.next_chunk),
            given AS (
                UPDATE jobs.map_chunk c SET dispatched_at = now() FROM m
                WHERE c.map_id = $1 AND c.chunk >= m.next_chunk AND c.chunk < m.upto AND c.state = 'enqueued' AND c.dispatched_at IS NULL
                RETURNING c.chunk, m.function, m.queue, c.first_index, c.end_index
            )
            SELECT chunk, function, queue, first_index, end_index FROM given ORDER BY chunk
            """, connection, tx);
        cmd.Parameters.Add(new() { Value = mapId });
        return await cmd.ReadListAsync(r => new UndispatchedChunk(mapId, r.GetInt32(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetInt32(4)), ct);
    }

    /// <summary>Creates the Hangfire jobs of chunks that have their turn and records them on their rows.</summary>
    public async Task DispatchAsync(IReadOnlyList<UndispatchedChunk> chunks, CancellationToken ct)
    {
        if (chunks.Count == 0) return;
        var hangfireJobs = new string[chunks.Count];
        for (var i = 0; i < chunks.Count; i++)
        {
            var c = chunks[i];
            hangfireJobs[i] = dispatcher.Dispatch(c.MapId, c.Chunk, c.Function, c.Queue, c.FirstIndex, c.EndIndex);
        }
        // A chunk claimed meanwhile (by this Hangfire job or, after a re-dispatch, another) keeps its owner.
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.map_chunk c SET hangfire_job_id = coalesce(c.hangfire_job_id, d.hangfire_job_id)
            FROM unnest($1::uuid[], $2::int[], $3::text[]) AS d(map_id, chunk, hangfire_job_id)
            WHERE c.map_id = d.map_id AND c.chunk = d.chunk
            """);
        cmd.Parameters.Add(new() { Value = chunks.Select(c => c.MapId).ToArray() });
        cmd.Parameters.Add(new() { Value = chunks.Select(c => c.Chunk).ToArray() });
        cmd.Parameters.Add(new() { Value = hangfireJobs });
        await DatabaseRetry.RunAsync(token => cmd.ExecuteNonQueryAsync(token), ct);
    }

    /// <summary>
    /// Fills the map's window up again (the rescuer's repair: in normal operation every chunk that ends refills it in
    /// the same transaction). Returns how many chunks got their turn.
    /// </summary>
    public async Task<int> RefillAsync(Guid mapId, CancellationToken ct)
    {
        IReadOnlyList<UndispatchedChunk> given;
        await using (var connection = await dataSource.OpenConnectionAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            await using (var lockMap = new NpgsqlCommand("SELECT 1 FROM jobs.map WHERE id = $1 FOR UPDATE", connection, tx) { Parameters = { new() { Value = mapId } } })
                await lockMap.ExecuteNonQueryAsync(ct);
            given = await GiveTurnsAsync(connection, tx, mapId, ct);
            await tx.CommitAsync(ct);
        }
        await DispatchAsync(given, ct);
        return given.Count;
    }

    /// <summary>Dispatches chunks after a chunk ended; a failure leaves them to the rescuer, as a killed process would.</summary>
    public async Task DispatchOrLeaveToRescuerAsync(IReadOnlyList<UndispatchedChunk> chunks)
    {
        try
        {
            await DispatchAsync(chunks, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not hand {Count} chunk(s) of map {MapId} to Hangfire; the rescuer dispatches them after Jobs:DispatchGracePeriod",
                chunks.Count, chunks[0].MapId);
        }
    }

    /// <summary>
    /// The map's next chunks that have not had their turn, about <paramref name="items"/> items' worth (at least one
    /// chunk), claimed for <paramref name="hangfireJobId"/> (and its <paramref name="run"/>) under the map's row lock, for a run that carries on (<see cref="MapExecutionStore.FinishRunAsync"/>); null when none is left or the map
    /// is canceled. Chunks below next_chunk have all had their turn, so the run taken is consecutive.
    /// </summary>
    internal static async Task<CarriedRun?> TakeNextRunAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid mapId, string hangfireJobId, string worker,
        int items, Guid? run, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            WITH run AS (
                SELECT next_chunk AS lo, least(chunks, next_chunk + greatest(1, $2 / chunksize)) AS hi FROM jobs.map
                WHERE id = $1 AND state IN ('enqueued', 'processing') AND cancel_requested_at IS NULL AND next_chunk < chunks
            ),
            advanced AS (UPDATE jobs.map AS map SET next_chunk = run.hi FROM run WHERE map.id = $1),
            taken AS (
                UPDATE jobs.map_chunk c SET state = 'processing', attempts = attempts + 1, started_at = now(), worker = $4,
                    hangfire_job_id = $3, dispatched_at = now(), run_id = $5
                FROM run WHERE c.map_id = $1 AND c.chunk >= run.lo AND c.chunk < run.hi AND c.state = 'enqueued' AND c.dispatched_at IS NULL
                RETURNING c.chunk, c.first_index, c.end_index, c.attempts, c.crashes
            )
            SELECT {RunOfChunks} FROM taken HAVING count(*) > 0
            """, connection, tx);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = items });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        cmd.Parameters.Add(Parameters.Uuid(run));
        return await cmd.ReadFirstOrDefaultAsync(ReadRun, ct);
    }

    /// <summary>
    /// The chunks <paramref name="run"/> holds 'processing' under <paramref name="hangfireJobId"/>, as one run of chunks
    /// (what <see cref="TakeNextRunAsync"/> took for it), or null.
    /// </summary>
    internal static async Task<CarriedRun?> HeldRunAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid mapId, string hangfireJobId, Guid? run,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT {RunOfChunks} FROM jobs.map_chunk
            WHERE map_id = $1 AND hangfire_job_id = $2 AND state = 'processing' AND run_id IS NOT DISTINCT FROM $3 HAVING count(*) > 0
            """, connection, tx);
        cmd.Parameters.Add(new() { Value = mapId });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(Parameters.Uuid(run));
        return await cmd.ReadFirstOrDefaultAsync(ReadRun, ct);
    }

    /// <summary>Chunks as one run: the select list <see cref="ReadRun"/> reads.</summary>
    private const string RunOfChunks = "min(chunk), max(chunk) + 1, min(first_index), max(end_index), max(attempts), max(crashes)";

    private static CarriedRun ReadRun(NpgsqlDataReader r) => new(r.GetInt32(0), r.GetInt32(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4), r.GetInt32(5));
}
