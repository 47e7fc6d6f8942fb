using System.Collections.Concurrent;
using System.Data;
using Hangfire.PostgreSql;
using Hangfire.Storage;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// How a worker process takes Hangfire jobs from <c>hangfire.jobqueue</c>: plugged into Hangfire.PostgreSql through its
/// public <see cref="IPersistentJobQueueProvider"/> extension point for the queues this process serves, so Hangfire's
/// servers still pull and run the jobs and the dashboard still shows them. The table, and the way jobs are put in
/// it (an INSERT and <c>NOTIFY new_job</c>), stay Hangfire.PostgreSql's: the API and the dashboard enqueue with its
/// stock provider.
/// <para>
/// Why not the stock fetch: Hangfire.PostgreSql 1.21.1 opens a LISTEN connection in every <c>Dequeue</c> call and,
/// after it has fetched a job, cancels and waits for that listener in a <c>finally</c>. A listener that does not
/// end (a cancellation lost while it re-issues LISTEN) keeps the thread in <c>Dequeue</c> with a fetched job that
/// nobody will run, while that job's own keep-alive timer makes it invisible to every other worker for good
/// (issue 11, finding 1: a lone job enqueued for &gt; 150 s). Here nothing runs between the fetch and the return, so a
/// fetched job always reaches Hangfire's worker, which disposes it.
/// </para>
/// <para>
/// Liveness belongs to the process, not to per-fetch timers: one <see cref="Liveness"/> thread per process renews
/// every job this process holds in one statement, and gives back (in every process) the fetches nobody renewed for
/// Worker:InvisibilityTimeout — their process died or hung. See <see cref="Invariants"/> for the whole contract.
/// </para>
/// </summary>
public sealed class Producer : IPersistentJobQueueProvider, IPersistentJobQueue, IDisposable
{
    /// <summary>Hangfire.PostgreSql's channel: its Enqueue notifies it (with EnableLongPolling), so must ours.</summary>
    public const string Channel = "new_job";

    private static readonly string Schema = Migrator.HangfireSchema;

    private readonly NpgsqlDataSource _dataSource;
    private readonly WorkerOptions _options;
    private readonly ILogger<Producer> _logger;
    private readonly ConcurrentDictionary<FetchedJob, byte> _held = new();
    private readonly QueueSignal _signal;
    private readonly Liveness _liveness;
    private IPersistentJobQueueMonitoringApi? _monitoring;
    private int _started;

    public Producer(NpgsqlDataSource dataSource, IConfiguration configuration, IOptions<WorkerOptions> options, ILogger<Producer> logger)
    {
        _dataSource = dataSource;
        _options = options.Value;
        _logger = logger;
        // From the configuration: a data source's ConnectionString has the password stripped.
        _signal = new QueueSignal(configuration.GetJobsConnectionString(), Channel, logger);
        _liveness = new Liveness(this);
    }

    /// <summary>Takes over fetching for <paramref name="queues"/> of <paramref name="storage"/>.</summary>
    public void Attach(PostgreSqlStorage storage, IEnumerable<string> queues)
    {
        // The stock provider still answers the dashboard's questions about queue contents: same table.
        _monitoring = storage.QueueProviders.First().GetJobQueueMonitoringApi();
        storage.QueueProviders.Add(this, queues.Distinct(StringComparer.OrdinalIgnoreCase));
    }

    public IPersistentJobQueue GetJobQueue() => this;

    public IPersistentJobQueueMonitoringApi GetJobQueueMonitoringApi() =>
        new Monitoring(_monitoring ?? throw new InvalidOperationException("Producer is not attached to a storage."));

    /// <summary>
    /// Blocks until a job of <paramref name="queues"/> (in priority order) is fetched. Hangfire's worker threads call
    /// this; the returned job is theirs from the moment the fetch commits.
    /// </summary>
    public IFetchedJob Dequeue(string[] queues, CancellationToken cancellationToken)
    {
        Start();
        var idle = _signal.For(queues);
        // This thread's last fetch took the last job it saw: whatever came since woke an idle thread or left a wake-up
        // for the next to go idle (this one), so it goes straight to waiting, without an empty fetch.
        var drained = ReferenceEquals(t_drained, idle);
        t_drained = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!drained)
            {
                try
                {
                    foreach (var queue in queues)
                        if (TryFetch(queue, queues) is ({ } job, var more))
                        {
                            // One wake-up per job: a notification wakes one idle thread of this queue set (per process),
                            // and the thread that found work wakes the next only when more may remain, so a backlog (or
                            // one NOTIFY for many jobs) still reaches every idle slot, one fetch after another.
                            if (more) idle.WakeOne();
                            else t_drained = idle;
                            return job;
                        }
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    _logger.LogDebug(e, "Fetch failed; retrying after the poll interval");
                }
            }
            drained = false;
            // Returns at once if a wake-up came while nobody waited (e.g. during the fetch above): nothing is missed.
            idle.Wait(PollInterval, cancellationToken);
        }
    }

    /// <summary>The queue set whose last job this thread's last fetch took (see <see cref="Dequeue"/>).</summary>
    [ThreadStatic] private static IdleFetchers? t_drained;

    /// <summary>Worker threads of this process waiting for work (for tests and diagnostics).</summary>
    internal int IdleCount => _signal.IdleCount;

    public void Enqueue(IDbConnection connection, string queue, string jobId)
    {
        // What Hangfire.PostgreSql's own Enqueue does, inside the caller's transaction.
        var npgsql = (NpgsqlConnection)connection;
        using (var insert = new NpgsqlCommand($"INSERT INTO {Schema}.jobqueue (jobid, queue) VALUES ($1, $2)", npgsql))
        {
            insert.Parameters.Add(new() { Value = long.Parse(jobId, System.Globalization.CultureInfo.InvariantCulture) });
            insert.Parameters.Add(new() { Value = queue });
            insert.ExecuteNonQuery();
        }
        using var notify = new NpgsqlCommand($"NOTIFY {Channel}", npgsql);
        notify.ExecuteNonQuery();
    }

    /// <summary>
    /// With long polling (one LISTEN per process) the poll is a fallback; it also bounds how long a job given back by
    /// another process's <see cref="Liveness"/> waits when its NOTIFY was missed.
    /// </summary>
    internal TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Fetches the oldest job of <paramref name="queue"/>, and says whether another may wait in <paramref name="queues"/>
    /// (unfetched, not paused; rows other fetchers are taking at this moment count too, so it errs towards "more").
    /// </summary>
    private (FetchedJob? Job, bool More) TryFetch(string queue, string[] queues)
    {
        // One statement, committed on its own. updatecount is the fetch's generation: renewals, removal and give-back
        // match it, so a holder whose fetch was taken from it (rescued, refetched) can no longer touch the row.
        // A paused queue (jobs.paused_queue, POST /queues/{name}/pause) yields nothing; its resume NOTIFYs new_job, so
        // a waiting worker looks again at once (or at the next poll, PollInterval, should the notification be missed).
        // The "more" check runs only when a row was taken (an empty fetch stays one index probe, no write).
        using var cmd = _dataSource.CreateCommand($"""
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
        var job = new FetchedJob(this, reader.GetInt64(0), reader.GetInt64(1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            reader.GetString(2), reader.GetInt32(3));
        _held[job] = 0;
        return (job, reader.GetBoolean(4));
    }

    private void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) return;
        _signal.Start();
        _liveness.Start();
    }

    public void Dispose()
    {
        _liveness.Dispose();
        _signal.Dispose();
    }

    /// <summary>
    /// Renews every job this process holds, in one statement. Returns how many rows it renewed.
    /// </summary>
    internal int Renew()
    {
        var held = _held.Keys.ToArray();
        if (held.Length == 0) return 0;
        using var cmd = _dataSource.CreateCommand($"""
            UPDATE {Schema}.jobqueue q SET fetchedat = now()
            FROM unnest($1::bigint[], $2::int[]) AS h(id, generation)
            WHERE q.id = h.id AND q.updatecount = h.generation AND q.fetchedat IS NOT NULL
            """);
        cmd.Parameters.Add(new() { Value = held.Select(j => j.Id).ToArray() });
        cmd.Parameters.Add(new() { Value = held.Select(j => j.Generation).ToArray() });
        return cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Gives back fetches that no process renewed for Worker:InvisibilityTimeout: their process died (kill -9, OOM,
    /// power) or stopped running its liveness thread. Their rows keep their job id, so they sort ahead of a backlog.
    /// </summary>
    internal int RescueAbandoned()
    {
        using var cmd = _dataSource.CreateCommand($"""
            UPDATE {Schema}.jobqueue SET fetchedat = NULL, updatecount = (updatecount + 1) % 2000000000
            WHERE id IN (SELECT id FROM {Schema}.jobqueue WHERE fetchedat < now() - $1 FOR UPDATE SKIP LOCKED)
            """);
        cmd.Parameters.Add(new() { Value = _options.InvisibilityTimeout, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Interval });
        var rescued = cmd.ExecuteNonQuery();
        if (rescued > 0) Notify();
        return rescued;
    }

    internal TimeSpan InvisibilityTimeout => _options.InvisibilityTimeout;
    internal ILogger Logger => _logger;

    private void Remove(FetchedJob job, bool delete)
    {
        using var cmd = _dataSource.CreateCommand(delete
            ? $"DELETE FROM {Schema}.jobqueue WHERE id = $1 AND updatecount = $2"
            : $"UPDATE {Schema}.jobqueue SET fetchedat = NULL WHERE id = $1 AND updatecount = $2 AND fetchedat IS NOT NULL");
        cmd.Parameters.Add(new() { Value = job.Id });
        cmd.Parameters.Add(new() { Value = job.Generation });
        if (cmd.ExecuteNonQuery() > 0 && !delete) Notify();
    }

    private void Notify()
    {
        using var notify = _dataSource.CreateCommand($"NOTIFY {Channel}");
        notify.ExecuteNonQuery();
    }

    /// <summary>A job fetched by this process; Hangfire's worker owns it and disposes it when the run is over.</summary>
    private sealed class FetchedJob(Producer queue, long id, string jobId, string queueName, int generation) : IFetchedJob
    {
        private readonly Lock _lock = new();
        private bool _done;

        public long Id { get; } = id;
        public int Generation { get; } = generation;
        public string JobId { get; } = jobId;
        public string Queue { get; } = queueName;

        public void RemoveFromQueue() => Finish(delete: true);

        public void Requeue() => Finish(delete: false);

        private void Finish(bool delete)
        {
            lock (_lock)
            {
                if (_done) return;
                queue.Remove(this, delete);
                _done = true;
                queue._held.TryRemove(this, out _);
            }
        }

        public void Dispose()
        {
            // Untracked first: should the give-back fail (PostgreSQL away), nothing renews the fetch any more and the
            // next Liveness rescue, in whichever process, gives it back within Worker:InvisibilityTimeout.
            queue._held.TryRemove(this, out _);
            try
            {
                Requeue();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                queue._logger.LogWarning(e, "Could not give Hangfire job {JobId} back to its queue; it returns once its fetch expires", JobId);
            }
        }
    }

    /// <summary>Queue contents for the dashboard: the stock provider's, except that it lists no queues of its own (the stock one lists them all).</summary>
    private sealed class Monitoring(IPersistentJobQueueMonitoringApi stock) : IPersistentJobQueueMonitoringApi
    {
        public IEnumerable<string> GetQueues() => [];
        public IEnumerable<long> GetEnqueuedJobIds(string queue, int from, int perPage) => stock.GetEnqueuedJobIds(queue, from, perPage);
        public IEnumerable<long> GetFetchedJobIds(string queue, int from, int perPage) => stock.GetFetchedJobIds(queue, from, perPage);
        public EnqueuedAndFetchedCountDto GetEnqueuedAndFetchedCount(string queue) => stock.GetEnqueuedAndFetchedCount(queue);
    }
}
