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
                foreach (var job in await store.FindUndispatchedAsync(grace, 500, stoppingToken))
                {
                    await store.MarkDispatchedAsync(job.Id, dispatcher.Dispatch(job), stoppingToken);
                    logger.LogWarning("Dispatched job {JobId}, accepted but never handed to Hangfire", job.Id);
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
