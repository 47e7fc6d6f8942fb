using Hangfire;
using Hangfire.States;
using Jobs.Core.Queue;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// Deletes finished jobs whose retention (Jobs:Retention) is over. Hangfire expires its succeeded copies by
/// itself (see <see cref="RetentionFilter"/>); its failed ones never expire, so they are retired here too.
/// </summary>
internal sealed class RetentionPurger(HousekeepingStore store, IBackgroundJobClient hangfire, ILogger<RetentionPurger> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        while (await timer.TickAsync(stoppingToken))
        {
            try
            {
                int deleted;
                do
                {
                    (deleted, var failed) = await store.PurgeExpiredJobsAsync(1000, stoppingToken);
                    foreach (var id in failed)
                        hangfire.ChangeState(id, new DeletedState { Reason = RetentionFilter.RetiredReason }, FailedState.StateName);
                    if (deleted > 0) logger.LogInformation("Purged {Count} jobs past their retention", deleted);
                } while (deleted == 1000 && !stoppingToken.IsCancellationRequested);
                while (await store.PurgeExpiredMapsAsync(100, stoppingToken) == 100 && !stoppingToken.IsCancellationRequested) { }
                await store.PurgeExpiredIdempotencyKeysAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Retention purge failed; retrying in {Period}", Period);
            }
        }
    }
}
