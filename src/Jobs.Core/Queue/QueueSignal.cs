using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// One LISTEN connection per process for <see cref="Producer.Channel"/>. A notification wakes <b>one</b> idle fetcher
/// of each queue set (<see cref="IdleFetchers"/>), not all of them: a lone job costs one fetch per process, not one
/// per slot. The fetcher that finds work wakes the next one when more may remain, so a backlog still wakes every slot
/// (<see cref="Producer.Dequeue"/>). Waiters never depend on it: they also wake every <see cref="Producer.PollInterval"/>,
/// so a lost connection or a missed wake-up costs latency, never a job.
/// </summary>
internal sealed class QueueSignal : IDisposable
{
    private readonly string _connectionString;
    private readonly string _channel;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, IdleFetchers> _sets = new(StringComparer.Ordinal);
    private Task? _listener;

    public QueueSignal(string connectionString, string channel, ILogger logger)
    {
        // Its own physical connection: a pooled one would carry the LISTEN back into the pool.
        _connectionString = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            // Npgsql sends a keepalive query this often while waiting: a connection that died silently is noticed.
            KeepAlive = 10,
            MaxAutoPrepare = 0,
        }.ConnectionString;
        _channel = channel;
        _logger = logger;
    }

    /// <summary>The idle fetchers of workers serving <paramref name="queues"/> (one set per distinct list).</summary>
    public IdleFetchers For(string[] queues) => _sets.GetOrAdd(string.Join('\n', queues), _ => new IdleFetchers());

    /// <summary>Idle fetchers now waiting, over every queue set.</summary>
    public int IdleCount => _sets.Values.Sum(s => s.Count);

    /// <summary>Something may be fetchable: one idle fetcher of each queue set looks (the notification has no queue).</summary>
    public void Pulse()
    {
        foreach (var set in _sets.Values) set.WakeOne();
    }

    public void Start() => _listener = Task.Factory.StartNew(ListenAsync, TaskCreationOptions.LongRunning).Unwrap();

    private async Task ListenAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_connectionString);
                connection.Notification += (_, _) => Pulse();
                await connection.OpenAsync(ct);
                await using (var listen = new NpgsqlCommand($"LISTEN {_channel}", connection))
                    await listen.ExecuteNonQueryAsync(ct);
                // Whatever was notified while we were not listening: look now.
                Pulse();
                while (true) await connection.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "LISTEN {Channel} lost; reconnecting in 1 s (workers poll every second meanwhile)", _channel);
                try { await Task.Delay(TimeSpan.FromSeconds(1), ct); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener?.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
        _stop.Dispose();
    }
}

/// <summary>
/// The worker threads of one queue set that found nothing to fetch and wait. A wake-up goes to one of them; when none
/// waits it is kept (one, like an auto-reset event) for the next thread that goes idle, which then looks again at once
/// instead of waiting: a notification that arrives between a thread's empty fetch and its wait is never lost.
/// </summary>
internal sealed class IdleFetchers
{
    private readonly Lock _lock = new();
    // Last in, first woken: the thread that went idle last is the warmest.
    private readonly List<TaskCompletionSource> _waiting = [];
    private bool _pending;

    public int Count
    {
        get { lock (_lock) return _waiting.Count; }
    }

    /// <summary>Wakes one waiting thread, or, with none waiting, the next one that would wait.</summary>
    public void WakeOne()
    {
        TaskCompletionSource? woken = null;
        lock (_lock)
        {
            if (_waiting.Count > 0)
            {
                woken = _waiting[^1];
                _waiting.RemoveAt(_waiting.Count - 1);
            }
            else _pending = true;
        }
        // Outside the lock: the continuation (the blocked waiter's wake-up) runs inline.
        woken?.TrySetResult();
    }

    /// <summary>
    /// Waits until woken, at most <paramref name="timeout"/> (the poll). Throws only when <paramref name="ct"/> is
    /// canceled; a wake-up this thread took but will not act on is passed to another.
    /// </summary>
    public void Wait(TimeSpan timeout, CancellationToken ct)
    {
        TaskCompletionSource me;
        lock (_lock)
        {
            if (_pending)
            {
                _pending = false;
                return;
            }
            // Continuations run inline: the only one is this blocked thread's wake-up, which must not wait for a
            // thread-pool thread (a pool busy with jobs would delay every pickup by its thread injection, ~0.5–1 s).
            me = new TaskCompletionSource(TaskCreationOptions.None);
            _waiting.Add(me);
        }
        try
        {
            me.Task.Wait(timeout, ct);
        }
        catch (OperationCanceledException)
        {
        }
        bool stillWaiting;
        lock (_lock) stillWaiting = _waiting.Remove(me);
        if (ct.IsCancellationRequested)
        {
            if (!stillWaiting) WakeOne(); // woken, but this thread stops: someone else looks
            ct.ThrowIfCancellationRequested();
        }
    }
}
