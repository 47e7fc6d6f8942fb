using Hangfire;
using Hangfire.States;
using Jobs.Core.Storage;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// A job is stranded when its row says 'processing' but its Hangfire job has already ended — the run's outcome
/// could not be written (PostgreSQL was away for longer than <see cref="DatabaseRetry.Patience"/>). Such a job
/// is requeued, so it runs again instead of waiting forever; the lost run counts as a crash. The same for a map
/// chunk: its re-run does the items without an outcome.
/// </summary>
public sealed class StrandedJobRepair(JobStore store, MapStore maps, JobStorage storage, IBackgroundJobClient hangfire, ILogger<StrandedJobRepair> logger)
    : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(15);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        while (await DispatchSweeper.Tick(timer, stoppingToken))
        {
            try
            {
                var jobs = await store.FindLongProcessingAsync(TimeSpan.FromSeconds(30), 100, stoppingToken);
                var chunks = await maps.FindLongProcessingChunksAsync(TimeSpan.FromSeconds(30), 100, stoppingToken);
                if (jobs.Count == 0 && chunks.Count == 0) continue;
                using var connection = storage.GetConnection();
                foreach (var (id, hangfireJobId) in jobs.Select(j => (j.Id.ToString(), j.HangfireJobId)).Concat(chunks))
                {
                    var state = connection.GetStateData(hangfireJobId)?.Name;
                    var ended = state is null || state == SucceededState.StateName || state == FailedState.StateName || state == DeletedState.StateName;
                    if (ended && hangfire.ChangeState(hangfireJobId, new EnqueuedState(), state))
                        logger.LogWarning("Requeued job {JobId}: its Hangfire job {HangfireJobId} ended ({State}) without its outcome", id, hangfireJobId, state);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Stranded-job repair failed; retrying in {Period}", Period);
            }
        }
    }
}
