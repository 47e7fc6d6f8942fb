using Hangfire;
using Hangfire.States;
using Jobs.Core.Idempotency;
using Jobs.Core.Maps;
using Jobs.Core.SingleJobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Queue.Maintenance;

/// <summary>
/// The <b>cleaner</b>: every minute, in every worker process, deletes what is past its retention (Jobs:Retention) —
/// finished jobs, finished maps with their chunks, items and outcomes, and Idempotency-Keys whose window is over.
/// Hangfire expires its succeeded copies by itself (<see cref="RetentionFilter"/>); its failed ones never expire, so
/// they are retired here with their rows.
/// </summary>
public sealed class Cleaner(JobExecutionStore jobs, MapSubmissionStore maps, NpgsqlDataSource dataSource, IBackgroundJobClient hangfire, ILogger<Cleaner> logger)
    : BackgroundService
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
                    (deleted, var failed) = await jobs.PurgeExpiredAsync(1000, stoppingToken);
                    foreach (var id in failed)
                        hangfire.ChangeState(id, new DeletedState { Reason = StateReasons.Retired }, FailedState.StateName);
                    if (deleted > 0) logger.LogInformation("Purged {Count} jobs past their retention", deleted);
                } while (deleted == 1000 && !stoppingToken.IsCancellationRequested);
                while (await maps.PurgeExpiredAsync(100, stoppingToken) == 100 && !stoppingToken.IsCancellationRequested) { }
                await IdempotencyStore.PurgeExpiredAsync(dataSource, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Retention purge failed; retrying in {Period}", Period);
            }
        }
    }
}
