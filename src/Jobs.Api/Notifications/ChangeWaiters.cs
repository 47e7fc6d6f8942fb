using Jobs.Core.Queue;

namespace Jobs.Api.Notifications;

/// <summary>
/// The requests of this API process waiting for a change: a job finished (<see cref="Channels.JobFinished"/>), a map
/// made progress (<see cref="Channels.MapProgress"/>) — <c>?wait=</c>, <c>?timeout=</c>, streams. It listens on both
/// channels through the process's one <see cref="Notifier"/> and wakes the waiters of each notification's id; a gap
/// (the connection lost or re-made) wakes them all. Waiters re-read the database on every wake-up and at least once a
/// second, so a dropped connection delays them but never loses a result.
/// </summary>
internal sealed class ChangeWaiters(Notifier notifier) : IHostedService
{
    private static readonly string[] Listened = [Channels.JobFinished, Channels.MapProgress];
    private readonly Dictionary<(string Channel, Guid Id), List<TaskCompletionSource>> _waiters = [];
    private readonly Lock _lock = new();

    /// <summary>Completes when a notification for <paramref name="id"/> on <paramref name="channel"/> arrives (or the connection is lost).</summary>
    public Waiter Register(string channel, Guid id)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (!_waiters.TryGetValue((channel, id), out var list)) _waiters[(channel, id)] = list = [];
            list.Add(tcs);
        }
        return new Waiter(this, (channel, id), tcs);
    }

    /// <summary>
    /// Reads with <paramref name="read"/> until <paramref name="finished"/> holds, the thing is gone (null) or
    /// <paramref name="timeout"/> passes; re-reads on each notification for <paramref name="id"/> and at least
    /// once a second. Returns the last read.
    /// </summary>
    public async Task<T?> WaitAsync<T>(string channel, Guid id, Func<CancellationToken, Task<T?>> read, Func<T, bool> finished,
        TimeSpan timeout, CancellationToken ct) where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            // Register before reading, so a NOTIFY sent between the read and the wait is not missed.
            using var waiter = Register(channel, id);
            var value = await read(ct);
            var remaining = deadline - DateTime.UtcNow;
            if (value is null || finished(value) || remaining <= TimeSpan.Zero) return value;
            await Task.WhenAny(waiter.Task, Task.Delay(remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1), ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Listens from the start, so the first request's notification is not missed.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var channel in Listened)
            notifier.Listen(channel, payload =>
            {
                if (Guid.TryParse(payload, out var id)) Wake((channel, id));
            }, WakeAll);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Wake((string, Guid) id)
    {
        List<TaskCompletionSource>? list;
        lock (_lock) _waiters.Remove(id, out list);
        list?.ForEach(t => t.TrySetResult());
    }

    private void WakeAll()
    {
        List<TaskCompletionSource> all;
        lock (_lock)
        {
            all = _waiters.Values.SelectMany(l => l).ToList();
            _waiters.Clear();
        }
        all.ForEach(t => t.TrySetResult());
    }

    private void Remove((string, Guid) id, TaskCompletionSource tcs)
    {
        lock (_lock)
        {
            if (_waiters.TryGetValue(id, out var list) && list.Remove(tcs) && list.Count == 0) _waiters.Remove(id);
        }
    }

    public sealed class Waiter(ChangeWaiters owner, (string, Guid) id, TaskCompletionSource tcs) : IDisposable
    {
        public Task Task => tcs.Task;
        public void Dispose() => owner.Remove(id, tcs);
    }
}
