using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Hands claimed jobs of a batch to Hangfire jobs of their own: half of those not yet started while the batch is slow
/// (so idle slots share it), and each job resumed after its worker died (so a crash count lands on its culprit alone).
/// </summary>
public sealed class BatchSharing(JobExecutionStore store, JobSubmissionStore submissions, JobDispatcher dispatcher, IOptions<JobsOptions> options,
    IOptions<WorkerOptions> worker, ILogger<JobRunner> logger)
{
    /// <summary>
    /// Every Worker:BatchSplitAfter while the batch runs, hands half of the jobs not yet started (rounded up) to a
    /// Hangfire job of their own: quick batches never split, slow ones spread over idle slots within a few rounds.
    /// </summary>
    public async Task ShareWhileSlowAsync(LinkedList<ClaimedJob> waiting, Run run, Task batchDone, CancellationToken stopping)
    {
        // No cancellation token here: most batches end before the first tick, and that must not cost an exception.
        while (await Task.WhenAny(Task.Delay(worker.Value.BatchSplitAfter, CancellationToken.None), batchDone) != batchDone && !stopping.IsCancellationRequested)
        {
            var share = new List<Guid>();
            lock (waiting)
                for (var n = (waiting.Count + 1) / 2; n > 0; n--)
                {
                    share.Add(waiting.Last!.Value.Id);
                    waiting.RemoveLast();
                }
            if (share.Count == 0) continue;
            share.Reverse();
            try
            {
                await HandOffAsync([.. share], run);
            }
            catch (Exception e)
            {
                // Left 'processing' under this Hangfire job: the rescuer re-runs it once this one has ended.
                logger.LogWarning(e, "Could not hand {Count} jobs of Hangfire job {HangfireJobId} to another worker", share.Count, run.HangfireJobId);
            }
        }
    }

    /// <summary>Gives claimed jobs back unrun and dispatches them in a Hangfire job of their own.</summary>
    public async Task HandOffAsync(Guid[] ids, Run run)
    {
        var rows = await DatabaseRetry.RunAsync(token => store.HandBackAsync(ids, run.HangfireJobId, options.Value.MaxWorkerCrashes, token, run.Id));
        if (rows.Count == 0) return;
        var owners = dispatcher.DispatchBatches(rows, rows.Count);
        await DatabaseRetry.RunAsync(token => submissions.MarkDispatchedAsync([.. rows.Select(r => r.Id)], owners, token));
    }
}
