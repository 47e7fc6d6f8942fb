using Jobs.Core.Configuration;
using Jobs.Core.Execution;
using Jobs.Core.Storage;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// The API stores a job, then creates its Hangfire job. An API killed between the two leaves a stored,
/// acknowledged-or-not job that nothing would run; this finds such rows after Jobs:DispatchGracePeriod and
/// dispatches them. Should the original dispatch exist after all, the runner's claim lets only one run.
/// </summary>
public sealed class DispatchSweeper(JobStore store, JobDispatcher dispatcher, IOptions<JobsOptions> options, ILogger<DispatchSweeper> logger)
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
                    dispatcher.Dispatch(job.Id, job.Function, job.Args, job.Kwargs, job.Queue);
                    await store.MarkDispatchedAsync(job.Id, stoppingToken);
                    logger.LogWarning("Dispatched job {JobId}, accepted but never handed to Hangfire", job.Id);
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
