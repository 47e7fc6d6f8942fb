using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Hangfire;

/// <summary>
/// One LISTEN connection per process for <see cref="WorkQueue.Channel"/>; every notification wakes every worker
/// thread waiting in <see cref="WorkQueue.Dequeue"/> (they race, SKIP LOCKED decides). Waiters never depend on it:
/// they also wake every <see cref="WorkQueue.PollInterval"/>, so a lost connection costs latency, never a job.
/// </summary>
internal sealed class QueueSignal : IDisposable
{
    private readonly string _connectionString;
    private readonly string _channel;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _next = NewSource();
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

    /// <summary>Completes at the next notification (or reconnect). Read it before looking for work.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse() => Interlocked.Exchange(ref _next, NewSource()).TrySetResult();

    /// <summary>Waits for <paramref name="wake"/>, at most <paramref name="timeout"/>; throws only when <paramref name="ct"/> is canceled.</summary>
    public void Wait(Task wake, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            wake.Wait(timeout, ct);
        }
        catch (OperationCanceledException)
        {
            ct.ThrowIfCancellationRequested();
        }
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

    // Continuations run inline: the only ones are the blocked waiters' wake-ups, which must not wait for a thread-pool
    // thread (a pool busy with jobs would delay every pickup by the pool's thread injection, ~0.5–1 s).
    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.None);
}
