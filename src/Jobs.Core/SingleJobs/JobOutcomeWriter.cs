using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Writes the outcomes of claimed jobs, the batch's together in one statement (retried through a PostgreSQL restart:
/// they must land), one by one should PostgreSQL refuse one's data, then queues the callbacks of those that finished.
/// </summary>
public sealed class JobOutcomeWriter(JobExecutionStore store, ICallbackQueue callbacks, IOptions<JobsOptions> options, ILogger<JobRunner> logger)
{
    /// <summary>
    /// Writes <paramref name="batch"/>'s outcomes (retried while PostgreSQL restarts: they must land), then queues their
    /// callbacks. Returns whether every outcome was recorded (false: a row was no longer this run's).
    /// </summary>
    public async Task<bool> WriteAsync(Run run, (ClaimedJob Job, JobOutcome Outcome, Exception? Failure)[] batch)
    {
        if (batch.Length == 0) return true;
        IReadOnlySet<Guid> changed;
        try
        {
            changed = await DatabaseRetry.RunAsync(token => store.FinishAsync(run.HangfireJobId, [.. batch.Select(o => o.Outcome)], options.Value.Retention, token, run.Id));
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("22", StringComparison.Ordinal))
        {
            // PostgreSQL refused an outcome's data although MaybeEncodingError.Check passed it: write them one by one,
            // and end the refused one failed, so that no outcome is lost and no job waits for ever.
            logger.LogWarning(e, "PostgreSQL refused a batch of {Count} outcomes; writing them one by one", batch.Length);
            var each = new HashSet<Guid>();
            foreach (var (job, outcome, _) in batch)
            {
                try
                {
                    each.UnionWith(await DatabaseRetry.RunAsync(token => store.FinishAsync(run.HangfireJobId, [outcome], options.Value.Retention, token, run.Id)));
                }
                catch (PostgresException refused) when (refused.SqlState.StartsWith("22", StringComparison.Ordinal))
                {
                    var error = JobAttempt.Error(new MaybeEncodingError($"Error sending the outcome of {job.Function}: PostgreSQL refused it ({refused.MessageText})"));
                    each.UnionWith(await DatabaseRetry.RunAsync(token =>
                        store.FinishAsync(run.HangfireJobId, [new JobOutcome(job.Id, JobStates.Failed, error)], options.Value.Retention, token, run.Id)));
                }
            }
            changed = each;
        }
        if (changed.Count < batch.Length)
            foreach (var (job, _, _) in batch.Where(o => !changed.Contains(o.Job.Id)))
                logger.LogInformation("Job {JobId}: the outcome of run {RunId} is not recorded now — the job is no longer this run's (canceled, " +
                    "taken over by another run after this worker lost it, or ended by an earlier try of this write whose answer was lost)", job.Id, run.Id);
        // Most jobs have no callback: then finishing costs no extra statement.
        foreach (var (job, outcome, _) in batch)
            if (job.CallbackUrl is not null && changed.Contains(job.Id) && JobStates.IsFinished(outcome.State))
                await callbacks.EnqueueAsync(job.Id, job.Queue, CancellationToken.None);
        return changed.Count == batch.Length;
    }
}
