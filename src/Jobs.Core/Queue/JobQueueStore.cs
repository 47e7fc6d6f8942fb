using Hangfire.States;
using Jobs.Core.Database;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Queue;

/// <summary>
/// Every statement on Hangfire's queue table (<c>hangfire.jobqueue</c>) that takes, renews or gives back a row: the
/// <see cref="Producer"/>'s fetches and the rescuer's give-backs. A row's <c>updatecount</c> is its fetch's
/// <b>generation</b>: each fetch and each give-back makes a new one, and renewals and removals match it, so a holder
/// whose fetch was taken from it (rescued, refetched) can no longer touch the row.
/// </summary>
public sealed class JobQueueStore(NpgsqlDataSource dataSource)
{
    private static readonly string Schema = Migrator.HangfireSchema;

    /// <summary>One fetched row: its id, its Hangfire job, its queue and its generation.</summary>
    public sealed record Fetch(long Id, string JobId, string Queue, int Generation);

    /// <summary>
    /// Fetches the oldest job of <paramref name="queue"/>, and says whether another may wait in <paramref name="queues"/>
    /// (unfetched, not paused; rows other fetchers are taking at this moment count too, so it errs towards "more").
    /// </summary>
    public (Fetch? Row, bool More) TryFetch(string queue, string[] queues)
    {
        // One statement, committed on its own. A paused queue (jobs.paused_queue, POST /queues/{name}/pause) yields
        // nothing; its resume notifies new work, so a waiting worker looks again at once (or at its next poll).
        // The "more" check runs only when a row was taken (an empty fetch stays one index probe, no write).
        using var cmd = dataSource.CreateCommand($"""
            WITH taken AS (
                UPDATE {Schema}.jobqueue q SET fetchedat = now(), updatecount = (q.updatecount + 1) % 2000000000
                WHERE q.id = (SELECT id FROM {Schema}.jobqueue WHERE queue = $1 AND fetchedat IS NULL
                              AND NOT EXISTS (SELECT 1 FROM jobs.paused_queue p WHERE p.queue = $1)
                              ORDER BY jobid LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING q.id, q.jobid, q.queue, q.updatecount)
            SELECT t.id, t.jobid, t.queue, t.updatecount,
                   EXISTS (SELECT 1 FROM {Schema}.jobqueue r WHERE r.queue = ANY($2) AND r.fetchedat IS NULL AND r.id <> t.id
                           AND NOT EXISTS (SELECT 1 FROM jobs.paused_queue p WHERE p.queue = r.queue))
            FROM taken t
            """);
        cmd.Parameters.Add(new() { Value = queue });
        cmd.Parameters.Add(new() { Value = queues });
        using var reader = cmd.ExecuteReader();
        if (!reader.Read()) return (null, false);
        var row = new Fetch(reader.GetInt64(0), reader.GetInt64(1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            reader.GetString(2), reader.GetInt32(3));
        return (row, reader.GetBoolean(4));
    }

    /// <summary>Hangfire.PostgreSql's own enqueue, inside the caller's transaction: the row and the wake-up.</summary>
    public static void Enqueue(NpgsqlConnection connection, string queue, string jobId)
    {
        using (var insert = new NpgsqlCommand($"INSERT INTO {Schema}.jobqueue (jobid, queue) VALUES ($1, $2)", connection))
        {
            insert.Parameters.Add(new() { Value = long.Parse(jobId, System.Globalization.CultureInfo.InvariantCulture) });
            insert.Parameters.Add(new() { Value = queue });
            insert.ExecuteNonQuery();
        }
        using var notify = new NpgsqlCommand($"NOTIFY {Channels.NewWork}", connection);
        notify.ExecuteNonQuery();
    }

    /// <summary>Renews the fetches a process holds, in one statement; returns how many rows it renewed.</summary>
    public int Renew(IReadOnlyCollection<Fetch> held)
    {
        if (held.Count == 0) return 0;
        using var cmd = dataSource.CreateCommand($"""
            UPDATE {Schema}.jobqueue q SET fetchedat = now()
            FROM unnest($1::bigint[], $2::int[]) AS h(id, generation)
            WHERE q.id = h.id AND q.updatecount = h.generation AND q.fetchedat IS NOT NULL
            """);
        cmd.Parameters.Add(new() { Value = held.Select(j => j.Id).ToArray() });
        cmd.Parameters.Add(new() { Value = held.Select(j => j.Generation).ToArray() });
        return cmd.ExecuteNonQuery();
    }

    /// <summary>Ends a fetch: deletes its row (the run is over), or gives it back unfetched (and wakes a fetcher).</summary>
    public void Finish(Fetch fetch, bool delete)
    {
        using var cmd = dataSource.CreateCommand(delete
            ? $"DELETE FROM {Schema}.jobqueue WHERE id = $1 AND updatecount = $2"
            : $"UPDATE {Schema}.jobqueue SET fetchedat = NULL WHERE id = $1 AND updatecount = $2 AND fetchedat IS NOT NULL");
        cmd.Parameters.Add(new() { Value = fetch.Id });
        cmd.Parameters.Add(new() { Value = fetch.Generation });
        if (cmd.ExecuteNonQuery() > 0 && !delete) NotifyNewWork();
    }

    /// <summary>One round trip that writes nothing: whether PostgreSQL answers (the rescuer counts its healthy time by it).</summary>
    public void Ping()
    {
        using var cmd = dataSource.CreateCommand("SELECT 1");
        cmd.ExecuteScalar();
    }

    /// <summary>
    /// Gives back fetches that no process renewed for <paramref name="invisibilityTimeout"/>: their process died (kill -9,
    /// OOM, power) or stopped renewing. Their rows keep their job id, so they sort ahead of a backlog. Returns how many.
    /// </summary>
    public int GiveBackAbandoned(TimeSpan invisibilityTimeout)
    {
        using var cmd = dataSource.CreateCommand($"""
            UPDATE {Schema}.jobqueue SET fetchedat = NULL, updatecount = (updatecount + 1) % 2000000000
            WHERE id IN (SELECT id FROM {Schema}.jobqueue WHERE fetchedat < now() - $1 FOR UPDATE SKIP LOCKED)
            """);
        cmd.Parameters.Add(new() { Value = invisibilityTimeout, NpgsqlDbType = NpgsqlDbType.Interval });
        var given = cmd.ExecuteNonQuery();
        if (given > 0) NotifyNewWork();
        return given;
    }

    /// <summary>
    /// Gives back the rows of <paramref name="fetches"/> whose Hangfire job is still Enqueued (its holder never started
    /// it): a new generation, so the holder (whatever it is) can neither renew nor remove it any more. Only the fetch
    /// that was seen (its generation): one given back meanwhile and fetched afresh is left alone. Returns how many.
    /// </summary>
    public async Task<int> GiveBackNeverStartedAsync(IReadOnlyCollection<(string HangfireJobId, int Generation)> fetches, CancellationToken ct)
    {
        if (fetches.Count == 0) return 0;
        await using var cmd = dataSource.CreateCommand($"""
            WITH back AS (
                UPDATE {Schema}.jobqueue q SET fetchedat = NULL, updatecount = (q.updatecount + 1) % 2000000000
                FROM {Schema}.job hj, unnest($1::bigint[], $2::int[]) AS seen(jobid, generation)
                WHERE hj.id = q.jobid AND q.jobid = seen.jobid AND q.updatecount = seen.generation
                  AND q.fetchedat IS NOT NULL AND hj.statename = '{EnqueuedState.StateName}'
                RETURNING q.id)
            SELECT count(*)::int FROM back, pg_notify('{Channels.NewWork}', '') -- wakes the fetchers (called only with fetches seen)
            """);
        cmd.Parameters.Add(new() { Value = fetches.Select(f => long.Parse(f.HangfireJobId, System.Globalization.CultureInfo.InvariantCulture)).ToArray() });
        cmd.Parameters.Add(new() { Value = fetches.Select(f => f.Generation).ToArray() });
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private void NotifyNewWork()
    {
        using var notify = dataSource.CreateCommand($"NOTIFY {Channels.NewWork}");
        notify.ExecuteNonQuery();
    }
}
