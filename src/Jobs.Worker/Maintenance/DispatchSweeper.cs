using Hangfire;
using Jobs.Core.Configuration;
using Jobs.Core.Execution;
using Jobs.Core.Storage;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// The API stores a job, then creates its Hangfire job. An API killed between the two leaves a stored,
/// acknowledged-or-not job that nothing would run; this finds such rows after Jobs:DispatchGracePeriod and
/// dispatches them. Should the original dispatch exist after all, the runner's claim lets only one run.
/// Likewise for callbacks of finished jobs that no sender took (the worker died right after finishing).
/// </summary>
public sealed class DispatchSweeper(
    JobStore store, MapStore maps, JobDispatcher dispatcher, IBackgroundJobClient hangfire, IOptions<JobsOptions> options, ILogger<DispatchSweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var grace = options.Value.DispatchGracePeriod;
        using var timer = new PeriodicTimer(grace / 3);
        do
        {
            try
            {
                var undispatched = await store.FindUndispatchedAsync(grace, 500, stoppingToken);
                if (undispatched.Count > 0)
                {
                    // Delayed jobs each get their scheduled Hangfire job; the rest go in batches.
                    var (delayed, now) = (undispatched.Where(j => j.RunAt > DateTime.UtcNow).ToArray(), undispatched.Where(j => !(j.RunAt > DateTime.UtcNow)).ToArray());
                    var owners = delayed.Select(j => dispatcher.Dispatch([j])).Concat(dispatcher.DispatchBatches(now, options.Value.MaxBatchSize)).ToArray();
                    await store.MarkDispatchedAsync([.. delayed.Concat(now).Select(j => j.Id)], owners, stoppingToken);
                    logger.LogWarning("Dispatched {Count} jobs accepted but never handed to Hangfire: {JobIds}", owners.Length,
                        string.Join(", ", undispatched.Take(10).Select(j => j.Id)));
                }
                foreach (var chunk in await maps.FindUndispatchedChunksAsync(grace, 500, stoppingToken))
                {
                    var hangfireJobId = dispatcher.DispatchChunk(chunk.MapId, chunk.Chunk, chunk.Function, chunk.Queue, chunk.FirstIndex, chunk.EndIndex);
                    await maps.MarkChunksDispatchedAsync(chunk.MapId, [chunk.Chunk], [hangfireJobId], stoppingToken);
                    logger.LogWarning("Dispatched chunk {Chunk} of map {MapId}, accepted but never handed to Hangfire", chunk.Chunk, chunk.MapId);
                }
                foreach (var id in await store.FindUnsentCallbacksAsync(grace, 500, stoppingToken))
                {
                    var job = await store.GetAsync(id, stoppingToken);
                    if (job is not null && await CallbackSender.EnqueueAsync(store, hangfire, id, job.Queue, stoppingToken))
                        logger.LogWarning("Queued the callback of job {JobId}, finished but never handed to the sender", id);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Dispatch sweep failed; retrying in {Period}", grace / 3);
            }
        } while (await Tick(timer, stoppingToken));
    }

    /// <summary>False once the host stops, instead of an OperationCanceledException.</summary>
    internal static async Task<bool> Tick(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }
}
