using System.Collections.Concurrent;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// The jobs this process is running now, each with the token that DELETE /jobs/{id} cancels. A Hangfire job
/// carrying a batch cannot be deleted for one of its jobs, so the worker asks the database instead:
/// <see cref="CheckAsync"/>, every Worker:CancellationCheckInterval, one query for all running jobs.
/// </summary>
public sealed class RunningJobs(JobExecutionStore store)
{
    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _running = new();

    /// <summary>Registers a job for the duration of its run; dispose the result when the run ends.</summary>
    public Registration Register(Guid jobId)
    {
        var source = new CancellationTokenSource();
        _running[jobId] = source;
        return new Registration(this, jobId, source);
    }

    /// <summary>Cancels the running jobs whose cancellation was requested; returns how many.</summary>
    public async Task<int> CheckAsync(CancellationToken ct)
    {
        if (_running.IsEmpty) return 0;
        var canceled = 0;
        foreach (var id in await store.FindCancelRequestedAsync([.. _running.Keys], ct))
            if (_running.TryGetValue(id, out var source))
            {
                await source.CancelAsync();
                canceled++;
            }
        return canceled;
    }

    public sealed class Registration(RunningJobs owner, Guid jobId, CancellationTokenSource source) : IDisposable
    {
        public CancellationToken Token => source.Token;
        public bool IsCancellationRequested => source.IsCancellationRequested;

        public void Dispose()
        {
            owner._running.TryRemove(new KeyValuePair<Guid, CancellationTokenSource>(jobId, source));
            source.Dispose();
        }
    }
}
