using Jobs.Core.Configuration;
using Jobs.Core.SingleJobs;
using Jobs.Core.Maps;
using Jobs.Core.Queue;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// The API stores a job, then creates its Hangfire job. An API killed between the two leaves a stored,
/// acknowledged-or-not job that nothing would run; this finds such rows after Jobs:DispatchGracePeriod and
/// dispatches them (for a map: its chunks given their turn, see <see cref="MapWindow"/>, and refills a map's window
/// should fewer chunks have their turn than it allows), and marks the items of a canceled map its API left unmarked. Should the original dispatch exist after all, the runner's
/// claim lets only one run.
/// Likewise for callbacks of finished jobs that no sender took (the worker died right after finishing).
/// </summary>
internal sealed class DispatchSweeper(
    HousekeepingStore store, JobSubmissionStore jobs, JobDispatcher dispatcher, MapWindow window, MapSubmissionStore maps,
    ICallbackQueue callbacks, IOptions<JobsOptions> options, ILogger<DispatchSweeper> logger)
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
                var undispatched = await store.FindUndispatchedJobsAsync(grace, 500, stoppingToken);
                if (undispatched.Count > 0)
                {
                    // Delayed jobs each get their scheduled Hangfire job; the rest go in batches.
                    var (delayed, now) = (undispatched.Where(j => j.RunAt > DateTime.UtcNow).ToArray(), undispatched.Where(j => !(j.RunAt > DateTime.UtcNow)).ToArray());
                    var owners = delayed.Select(j => dispatcher.Dispatch([j])).Concat(dispatcher.DispatchBatches(now, options.Value.MaxBatchSize)).ToArray();
                    await jobs.MarkDispatchedAsync([.. delayed.Concat(now).Select(j => j.Id)], owners, stoppingToken);
                    logger.LogWarning("Dispatched {Count} jobs accepted but never handed to Hangfire: {JobIds}", owners.Length,
                        string.Join(", ", undispatched.Take(10).Select(j => j.Id)));
                }
                foreach (var chunk in await store.FindUndispatchedChunksAsync(grace, 500, stoppingToken))
                {
                    await window.DispatchAsync([chunk], stoppingToken);
                    logger.LogWarning("Dispatched chunk {Chunk} of map {MapId}, given its turn but never handed to Hangfire", chunk.Chunk, chunk.MapId);
                }
                foreach (var mapId in await store.FindMapsBelowWindowAsync(grace, 100, stoppingToken))
                {
                    if (await window.RefillAsync(mapId, stoppingToken) is > 0 and var given)
                        logger.LogWarning("Gave {Count} chunk(s) of map {MapId} their turn: fewer than its window were queued or running", given, mapId);
                }
                foreach (var mapId in await store.FindUnsettledCanceledMapsAsync(grace, 100, stoppingToken))
                {
                    var marked = await maps.SettleCanceledAsync(mapId, stoppingToken);
                    logger.LogWarning("Marked {Count} items of canceled map {MapId} canceled, left unmarked by the API that canceled it", marked, mapId);
                }
                foreach (var (id, queue) in await store.FindUnsentCallbacksAsync(grace, 500, stoppingToken))
                {
                    if (await callbacks.EnqueueAsync(id, queue, stoppingToken))
                        logger.LogWarning("Queued the callback of job {JobId}, finished but never handed to the sender", id);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Dispatch sweep failed; retrying in {Period}", grace / 3);
            }
        } while (await timer.TickAsync(stoppingToken));
    }
}
