using System.Collections.Concurrent;
using Hangfire.PostgreSql;
using Hangfire.Storage;
using Jobs.Core.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// The <b>producer</b>: how a worker process fetches Hangfire jobs from <c>hangfire.jobqueue</c> and keeps what it
/// fetched. Plugged into Hangfire.PostgreSql through its public <see cref="IPersistentJobQueueProvider"/> extension point
/// for the queues this process serves, so Hangfire's servers still pull and run the jobs (through the
/// <see cref="Executor"/>) and the dashboard still shows them. The table, and the way jobs are put in it (an INSERT and
/// a notification on <see cref="Channels.NewWork"/>), stay Hangfire.PostgreSql's; its statements are
/// <see cref="JobQueueStore"/>'s.
/// <para>
/// Why not the stock fetch: Hangfire.PostgreSql 1.21.1 opens a LISTEN connection in every <c>Dequeue</c> call and,
/// after it has fetched a job, cancels and waits for that listener in a <c>finally</c>. A listener that does not
/// end (a cancellation lost while it re-issues LISTEN) keeps the thread in <c>Dequeue</c> with a fetched job that
/// nobody will run, while that job's own keep-alive timer makes it invisible to every other worker for good
/// (issue 11, finding 1: a lone job enqueued for &gt; 150 s). Here nothing runs between the fetch and the return, so a
/// fetched job always reaches Hangfire's worker, which disposes it.
/// </para>
/// <para>
/// What a process holds is renewed by one <see cref="Heartbeat"/> thread per process, in one statement; fetches nobody
/// renewed for Worker:InvisibilityTimeout (their process died or hung) are given back by the rescuer
/// (<c>Maintenance.Rescuer</c>), in any worker. See <c>Maintenance.Invariants</c> for the whole contract.
/// </para>
/// </summary>
public sealed class Producer : IPersistentJobQueueProvider, IPersistentJobQueue, IDisposable
{
    private readonly JobQueueStore _store;
    private readonly Notifier _notifier;
    private readonly ILogger<Producer> _logger;
    private readonly ConcurrentDictionary<HeldJob, byte> _held = new();
    private readonly ConcurrentDictionary<string, IdleFetchers> _idle = new(StringComparer.Ordinal);
    private readonly Heartbeat _heartbeat;
    private IPersistentJobQueueMonitoringApi? _monitoring;
    private int _started;

    public Producer(JobQueueStore store, Notifier notifier, IOptions<WorkerOptions> options, ILogger<Producer> logger)
    {
        _store = store;
        _notifier = notifier;
        _logger = logger;
        _heartbeat = new Heartbeat(this, options.Value.InvisibilityTimeout, logger);
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
        new Monitoring(_monitoring ?? throw new InvalidOperationException("The producer is not attached to a storage."));

    /// <summary>
    /// Blocks until a job of <paramref name="queues"/> (in priority order) is fetched. Hangfire's worker threads call
    /// this; the returned job is theirs from the moment the fetch commits.
    /// </summary>
    public IFetchedJob Dequeue(string[] queues, CancellationToken cancellationToken)
    {
        Start();
        var idle = _idle.GetOrAdd(string.Join('\n', queues), _ => new IdleFetchers());
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
                        if (_store.TryFetch(queue, queues) is ({ } row, var more))
                        {
                            // One wake-up per job: a notification wakes one idle thread of this queue set (per process),
                            // and the thread that found work wakes the next only when more may remain, so a backlog (or
                            // one notification for many jobs) still reaches every idle slot, one fetch after another.
                            if (more) idle.WakeOne();
                            else t_drained = idle;
                            var job = new HeldJob(this, row);
                            _held[job] = 0;
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
    internal int IdleCount => _idle.Values.Sum(s => s.Count);

    public void Enqueue(System.Data.IDbConnection connection, string queue, string jobId) =>
        JobQueueStore.Enqueue((NpgsqlConnection)connection, queue, jobId);

    /// <summary>
    /// With one LISTEN per process the poll is a fallback; it also bounds how long a job given back by the rescuer
    /// waits when its notification was missed.
    /// </summary>
    internal TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Something may be fetchable: one idle fetcher of each queue set looks (a notification names no queue).</summary>
    private void Pulse()
    {
        foreach (var set in _idle.Values) set.WakeOne();
    }

    private void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) return;
        _notifier.Listen(Channels.NewWork, _ => Pulse(), Pulse);
        _heartbeat.Start();
    }

    /// <summary>Renews every fetch this process holds, in one statement. Returns how many rows it renewed.</summary>
    internal int Renew() => _store.Renew([.. _held.Keys.Select(j => j.Row)]);

    public void Dispose() => _heartbeat.Dispose();

    /// <summary>A job fetched by this process; Hangfire's worker owns it and disposes it when the run is over.</summary>
    private sealed class HeldJob(Producer producer, JobQueueStore.Fetch row) : IFetchedJob
    {
        private readonly Lock _lock = new();
        private bool _done;

        public JobQueueStore.Fetch Row { get; } = row;
        public string JobId => Row.JobId;

        public void RemoveFromQueue() => Finish(delete: true);

        public void Requeue() => Finish(delete: false);

        private void Finish(bool delete)
        {
            lock (_lock)
            {
                if (_done) return;
                producer._store.Finish(Row, delete);
                _done = true;
                producer._held.TryRemove(this, out _);
            }
        }

        public void Dispose()
        {
            // Untracked first: should the give-back fail (PostgreSQL away), nothing renews the fetch any more and the
            // rescuer, in whichever worker, gives it back within Worker:InvisibilityTimeout.
            producer._held.TryRemove(this, out _);
            try
            {
                Requeue();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                producer._logger.LogWarning(e, "Could not give Hangfire job {JobId} back to its queue; it returns once its fetch expires", JobId);
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
