using Jobs.Core.Storage;
using Npgsql;

namespace Jobs.Api.Jobs;

/// <summary>
/// One LISTEN connection per API process on the channel workers NOTIFY when a job finishes, fanned out to
/// the requests waiting on that job (<c>?wait=</c>, <c>/result?timeout=</c>). Waiters re-read the row on
/// every wake-up and at least once a second, so a dropped connection delays them but never loses a result.
/// </summary>
public sealed class JobCompletionListener(NpgsqlDataSource dataSource, ILogger<JobCompletionListener> logger) : BackgroundService
{
    private readonly Dictionary<Guid, List<TaskCompletionSource>> _waiters = [];
    private readonly Lock _lock = new();

    /// <summary>Completes when a notification for <paramref name="jobId"/> arrives (or the connection is lost).</summary>
    public Waiter Register(Guid jobId)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (!_waiters.TryGetValue(jobId, out var list)) _waiters[jobId] = list = [];
            list.Add(tcs);
        }
        return new Waiter(this, jobId, tcs);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) =>
                {
                    if (Guid.TryParse(e.Payload, out var id)) Wake(id);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {JobStore.FinishedChannel}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                while (!stoppingToken.IsCancellationRequested) await connection.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Lost the LISTEN connection for finished jobs; waiters fall back to polling until it is back");
                WakeAll();
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private void Wake(Guid id)
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

    private void Remove(Guid id, TaskCompletionSource tcs)
    {
        lock (_lock)
        {
            if (_waiters.TryGetValue(id, out var list) && list.Remove(tcs) && list.Count == 0) _waiters.Remove(id);
        }
    }

    public sealed class Waiter(JobCompletionListener owner, Guid id, TaskCompletionSource tcs) : IDisposable
    {
        public Task Task => tcs.Task;
        public void Dispose() => owner.Remove(id, tcs);
    }
}
