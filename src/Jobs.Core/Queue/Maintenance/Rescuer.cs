using Jobs.Core.Database;
using Hangfire;
using Hangfire.States;
using Jobs.Core.Configuration;
using Jobs.Core.Maps;
using Jobs.Core.SingleJobs;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Queue.Maintenance;

/// <summary>
/// The <b>rescuer</b>: every worker process runs one, and each of its duties is safe to run in many processes at once.
/// It moves on what a dead or cut-off process left half-done, so that every accepted job ends (<see cref="Invariants"/>):
/// <list type="number">
/// <item><b>Abandoned fetches</b> — a queue row nobody renewed for Worker:InvisibilityTimeout (its process died or
/// hung) is given back, every second, on a thread of its own (a thread pool busy with jobs must not delay it).</item>
/// <item><b>Stranded dispatches</b> — a job stored but never handed to Hangfire (its API died in between), a map chunk
/// given its turn but never handed over, a map below its window, a canceled map's unmarked items, a finished job's
/// callback nobody queued: found after Jobs:DispatchGracePeriod and moved on. Should the original dispatch exist after
/// all, the executor's claim lets only one run.</item>
/// <item><b>Invariants</b> — every unfinished job must be in one of the situations that lead to an end; one that is
/// not, for longer than Worker:InvariantBound, is logged as an error and counted (jobs.invariant_violations); a fetch
/// that never started is given back, and a Hangfire job that ended without its row's outcome is enqueued again (the run
/// it lost counts as a crash).</item>
/// </list>
/// </summary>
public sealed class Rescuer(
    JobQueueStore queue, Invariants invariants, JobQueries jobs, JobSubmissionStore submissions, JobDispatcher dispatcher, JobCallbackStore callbackStates,
    ICallbackQueue callbacks, MapQueries maps, MapSubmissionStore mapSubmissions, MapWindow window, IBackgroundJobClient hangfire, JobsMetrics metrics,
    DatabaseClock clock, IOptions<WorkerOptions> worker, IOptions<JobsOptions> options, ILogger<Rescuer> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // LongRunning: a thread of its own, not a pool thread (see AbandonedFetches).
        var abandoned = Task.Factory.StartNew(() => new AbandonedFetches(queue, worker.Value.InvisibilityTimeout, logger).GiveBack(stoppingToken),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return Task.WhenAll(
            Task.Run(() => RepeatAsync(options.Value.DispatchGracePeriod / 3, "Dispatch sweep", LogLevel.Warning, MoveStrandedAsync, stoppingToken), CancellationToken.None),
            Task.Run(() => CheckInvariantsAsync(stoppingToken), CancellationToken.None),
            abandoned);
    }

    /// <summary>Moves on what was accepted but never handed on (see the class summary, duty 2).</summary>
    private async Task MoveStrandedAsync(CancellationToken ct)
    {
        var grace = options.Value.DispatchGracePeriod;
        var undispatched = await jobs.FindUndispatchedAsync(grace, 500, ct);
        if (undispatched.Count > 0)
        {
            // Delayed jobs each get their scheduled Hangfire job; the rest go in batches.
            var due = clock.UtcNow;
            var (delayed, now) = (undispatched.Where(j => j.RunAt > due).ToArray(), undispatched.Where(j => !(j.RunAt > due)).ToArray());
            var owners = delayed.Select(j => dispatcher.Dispatch([j])).Concat(dispatcher.DispatchBatches(now, options.Value.MaxBatchSize)).ToArray();
            await submissions.MarkDispatchedAsync([.. delayed.Concat(now).Select(j => j.Id)], owners, ct);
            logger.LogWarning("Dispatched {Count} jobs accepted but never handed to Hangfire: {JobIds}", owners.Length,
                string.Join(", ", undispatched.Take(10).Select(j => j.Id)));
        }
        foreach (var chunk in await maps.FindUndispatchedChunksAsync(grace, 500, ct))
        {
            await window.DispatchAsync([chunk], ct);
            logger.LogWarning("Dispatched chunk {Chunk} of map {MapId}, given its turn but never handed to Hangfire", chunk.Chunk, chunk.MapId);
        }
        foreach (var mapId in await maps.FindMapsBelowWindowAsync(grace, 100, ct))
        {
            if (await window.RefillAsync(mapId, ct) is > 0 and var given)
                logger.LogWarning("Gave {Count} chunk(s) of map {MapId} their turn: fewer than its window were queued or running", given, mapId);
        }
        foreach (var mapId in await maps.FindUnsettledCanceledMapsAsync(grace, 100, ct))
        {
            var marked = await mapSubmissions.SettleCanceledAsync(mapId, ct);
            logger.LogWarning("Marked {Count} items of canceled map {MapId} canceled, left unmarked by the API that canceled it", marked, mapId);
        }
        foreach (var (id, queueName) in await callbackStates.FindUnsentCallbacksAsync(grace, 500, ct))
        {
            if (await callbacks.EnqueueAsync(id, queueName, ct))
                logger.LogWarning("Queued the callback of job {JobId}, finished but never handed to the sender", id);
        }
    }

    /// <summary>Checks <see cref="Invariants"/> and repairs the two violations it can (see the class summary, duty 3).</summary>
    private Task CheckInvariantsAsync(CancellationToken stoppingToken)
    {
        var bound = worker.Value.InvariantBound;
        var period = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, Math.Max(bound.Ticks / 3, TimeSpan.FromMilliseconds(200).Ticks)));
        // The sweep moves on rows older than the grace period on a timer of a third of it.
        var grace = options.Value.DispatchGracePeriod + options.Value.DispatchGracePeriod / 3;
        return RepeatAsync(period, "Invariant check", LogLevel.Debug, async ct =>
        {
            var violations = await invariants.CheckAsync(bound, worker.Value.InvisibilityTimeout, grace, ct);
            metrics.InvariantsChecked();
            foreach (var v in violations)
            {
                metrics.InvariantViolated(v.Kind, v.Problem);
                logger.LogError("Invariant violated: {Violation}", v);
            }
            var neverStarted = violations.Where(v => v.Problem == Invariants.NeverStarted && v.FetchGeneration is not null)
                .Select(v => (v.HangfireJobId!, v.FetchGeneration!.Value)).Distinct().ToArray();
            if (await queue.GiveBackNeverStartedAsync(neverStarted, ct) is > 0 and var back)
                logger.LogWarning("Gave back {Count} fetched job(s) that their holder never started", back);
            foreach (var lost in violations.Where(v => v.HangfireJobId is not null && Invariants.HasEnded(v.HangfireState)).DistinctBy(v => v.HangfireJobId))
                if (hangfire.ChangeState(lost.HangfireJobId!, new EnqueuedState { Reason = StateReasons.Repair }, lost.HangfireState))
                    logger.LogWarning("Requeued {Kind} {Id}: its Hangfire job {HangfireJobId} ended ({State}) without its outcome",
                        lost.Kind, lost.Id, lost.HangfireJobId, lost.HangfireState);
        }, stoppingToken, firstAtOnce: false);
    }

    /// <summary>Runs <paramref name="duty"/> now and every <paramref name="period"/>; a failure is logged and tried again at the next tick.</summary>
    private async Task RepeatAsync(TimeSpan period, string name, LogLevel failureLevel, Func<CancellationToken, Task> duty, CancellationToken stoppingToken,
        bool firstAtOnce = true)
    {
        using var timer = new PeriodicTimer(period);
        if (!firstAtOnce && !await TickAsync(timer, stoppingToken)) return;
        do
        {
            try
            {
                await duty(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.Log(failureLevel, e, "{Duty} failed; trying again in {Period}", name, period);
            }
        } while (await TickAsync(timer, stoppingToken));
    }

    private static async Task<bool> TickAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.TickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }
}
