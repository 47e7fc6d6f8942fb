using Jobs.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// The one LISTEN connection of a process (API or worker), on the <see cref="Channels"/> its parts listen on: a
/// worker's <see cref="Producer"/> on new work, the API's waiters on finished jobs and map progress. Each notification
/// is handed to the listeners of its channel on the connection's reading thread (they only wake someone up). Listeners
/// are also told of every gap — the connection lost, and each (re)connection, after which whatever was notified while
/// nobody listened is unknown — so they look again; they poll besides, so a lost connection costs latency, never a job.
/// </summary>
public sealed class Notifier : IDisposable
{
    private readonly string _connectionString;
    private readonly ILogger<Notifier> _logger;
    private readonly NpgsqlDataSource? _pool;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<Listener>> _listeners = new(StringComparer.Ordinal);
    private CancellationTokenSource? _reconnect;
    private Task? _loop;
    private bool _disposed;

    /// <param name="configuration">Where PostgreSQL is (ConnectionStrings:Jobs).</param>
    /// <param name="logger">Its warnings: the connection lost.</param>
    /// <param name="pool">
    /// The process's data source, whose idle connections are closed when this connection is lost (see <see cref="LoopAsync"/>).
    /// </param>
    public Notifier(IConfiguration configuration, ILogger<Notifier> logger, NpgsqlDataSource? pool = null)
    {
        _pool = pool;
        // From the configuration: a data source's ConnectionString has the password stripped. Its own physical
        // connection: a pooled one would carry the LISTEN back into the pool.
        _connectionString = new NpgsqlConnectionStringBuilder(configuration.GetJobsConnectionString())
        {
            Pooling = false,
            // Npgsql sends a keepalive query this often while waiting: a connection that died silently is noticed.
            KeepAlive = 10,
            MaxAutoPrepare = 0,
        }.ConnectionString;
        _logger = logger;
    }

    /// <summary>
    /// Listens on <paramref name="channel"/> from now on: <paramref name="notified"/> gets each notification's payload,
    /// <paramref name="gap"/> is called whenever notifications may have been missed (and once listening starts).
    /// The first call opens the connection; a later one with a new channel reconnects to LISTEN on it too.
    /// </summary>
    public void Listen(string channel, Action<string> notified, Action gap)
    {
        CancellationTokenSource? reconnect = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var isNew = !_listeners.TryGetValue(channel, out var list);
            if (isNew) _listeners[channel] = list = [];
            list!.Add(new Listener(notified, gap));
            if (_loop is null) _loop = Task.Factory.StartNew(LoopAsync, TaskCreationOptions.LongRunning).Unwrap();
            else if (isNew) reconnect = _reconnect;
        }
        // Outside the lock: cancellation runs the connection's continuations inline.
        try { reconnect?.Cancel(); }
        catch (ObjectDisposedException) { } // the loop replaced it meanwhile: its next connection listens on the new channel
    }

    private async Task LoopAsync()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            string[] channels;
            CancellationToken reconnect;
            lock (_lock)
            {
                channels = [.. _listeners.Keys];
                _reconnect?.Dispose();
                _reconnect = CancellationTokenSource.CreateLinkedTokenSource(stop);
                reconnect = _reconnect.Token;
            }
            try
            {
                await using var connection = new NpgsqlConnection(_connectionString);
                connection.Notification += (_, e) => Notified(e.Channel, e.Payload);
                await connection.OpenAsync(reconnect);
                await using (var listen = new NpgsqlCommand(string.Join(';', channels.Select(c => $"LISTEN {c}")), connection))
                    await listen.ExecuteNonQueryAsync(reconnect);
                // Whatever was notified while nobody listened: look now.
                Gap();
                while (true) await connection.WaitAsync(reconnect);
            }
            catch (OperationCanceledException) when (reconnect.IsCancellationRequested)
            {
                if (stop.IsCancellationRequested) return;
                // A new channel: LISTEN on every one again, at once.
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "LISTEN on {Channels} lost; reconnecting in 1 s (waiters poll meanwhile)", string.Join(", ", channels));
                // The connection is usually lost because PostgreSQL restarted or went away: then every idle connection of
                // the process's pool is dead too, and the first request to take one would fail (a 503 after the restart).
                // Closed now, the pool opens fresh ones; a connection in use is discarded by Npgsql when it fails.
                _pool?.Clear();
                Gap();
                try { await Task.Delay(TimeSpan.FromSeconds(1), stop); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    private void Notified(string channel, string payload)
    {
        Listener[] listeners;
        lock (_lock) listeners = _listeners.TryGetValue(channel, out var list) ? [.. list] : [];
        foreach (var listener in listeners) listener.Notified(payload);
    }

    private void Gap()
    {
        Listener[] listeners;
        lock (_lock) listeners = [.. _listeners.Values.SelectMany(l => l)];
        foreach (var listener in listeners) listener.Gap();
    }

    public void Dispose()
    {
        Task? loop;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            loop = _loop;
        }
        _stop.Cancel();
        try { loop?.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { }
    }

    private sealed record Listener(Action<string> Notified, Action Gap);
}
