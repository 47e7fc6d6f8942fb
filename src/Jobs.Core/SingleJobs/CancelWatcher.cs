using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Every Worker:CancellationCheckInterval, asks the database whether any job this process is running was
/// canceled (DELETE /jobs/{id}) and signals its token: one query for all of them, none while idle. Jobs that
/// share a Hangfire job (a batch) are canceled this way; a job alone in its Hangfire job also through
/// Hangfire's own check, whichever comes first.
/// </summary>
public sealed class CancelWatcher(RunningJobs running, IOptions<WorkerOptions> options, ILogger<CancelWatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CancellationCheckInterval);
        while (await timer.TickAsync(stoppingToken))
        {
            try
            {
                await running.CheckAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "Cancellation check failed; trying again in {Interval}", options.Value.CancellationCheckInterval);
            }
        }
    }
}
