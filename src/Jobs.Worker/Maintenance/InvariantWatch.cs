using Hangfire;
using Hangfire.States;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Maintenance;

/// <summary>
/// Checks <see cref="Invariants"/> continuously: every unfinished job must be on its way to an end. A job that is
/// not, for longer than Worker:InvariantBound, is logged as an error with its rows and counted in the
/// jobs.invariant_violations metric; a fetch that never started is given back to its queue, and a Hangfire job that
/// ended without its row's outcome is enqueued again (the run it lost counts as a crash).
/// </summary>
internal sealed class InvariantWatch(Invariants invariants, IBackgroundJobClient hangfire, JobsMetrics metrics, IOptions<WorkerOptions> worker, IOptions<JobsOptions> jobs,
    ILogger<InvariantWatch> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var bound = worker.Value.InvariantBound;
        var period = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, Math.Max(bound.Ticks / 3, TimeSpan.FromMilliseconds(200).Ticks)));
        // The sweeper dispatches rows older than the grace period on a timer of a third of it.
        var grace = jobs.Value.DispatchGracePeriod + jobs.Value.DispatchGracePeriod / 3;
        using var timer = new PeriodicTimer(period);
        while (await timer.TickAsync(stoppingToken))
        {
            try
            {
                var violations = await invariants.CheckAsync(bound, worker.Value.InvisibilityTimeout, grace, stoppingToken);
                metrics.InvariantsChecked();
                foreach (var v in violations)
                {
                    metrics.InvariantViolated(v.Kind, v.Problem);
                    logger.LogError("Invariant violated: {Violation}", v);
                }
                var neverStarted = violations.Where(v => v.Problem == Invariants.NeverStarted && v.FetchGeneration is not null)
                    .Select(v => (v.HangfireJobId!, v.FetchGeneration!.Value)).Distinct().ToArray();
                if (await invariants.GiveBackNeverStartedAsync(neverStarted, stoppingToken) is > 0 and var back)
                    logger.LogWarning("Gave back {Count} fetched job(s) that their holder never started", back);
                foreach (var lost in violations.Where(v => v.HangfireJobId is not null && Invariants.HasEnded(v.HangfireState)).DistinctBy(v => v.HangfireJobId))
                    if (hangfire.ChangeState(lost.HangfireJobId!, new EnqueuedState { Reason = Invariants.RepairReason }, lost.HangfireState))
                        logger.LogWarning("Requeued {Kind} {Id}: its Hangfire job {HangfireJobId} ended ({State}) without its outcome",
                            lost.Kind, lost.Id, lost.HangfireJobId, lost.HangfireState);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "Invariant check failed; trying again in {Period}", period);
            }
        }
    }
}
