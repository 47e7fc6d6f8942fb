using Jobs.Core.Configuration;
using Jobs.Core.Storage;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// Every second, puts the jobs of workers that died (no keep-alive for Worker:InvisibilityTimeout) back at the
/// head of their queue, so another worker re-runs them within seconds even behind a backlog.
/// </summary>
public sealed class AbandonedJobRequeuer(AbandonedJobs abandoned, IOptions<WorkerOptions> options, ILogger<AbandonedJobRequeuer> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await DispatchSweeper.Tick(timer, stoppingToken))
        {
            try
            {
                var requeued = await abandoned.RequeueAsync(options.Value.InvisibilityTimeout, stoppingToken);
                if (requeued > 0) logger.LogWarning("Requeued {Count} job(s) whose worker stopped sending keep-alives", requeued);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "Requeue of abandoned jobs failed; retrying in 1 s");
            }
        }
    }
}
