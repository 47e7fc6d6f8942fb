using Jobs.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Execution;

/// <summary>
/// Stores a job (durable from then on), then hands it to Hangfire. Used by the API and by recurring schedules.
/// If the process dies between the two, the workers' sweeper dispatches the row later; if Hangfire refuses,
/// the row is removed again and the caller sees the error.
/// </summary>
public sealed class JobSubmitter(JobStore store, JobDispatcher dispatcher, ILogger<JobSubmitter> logger)
{
    public async Task<(JobRecord Job, bool Created)> SubmitAsync(NewJob job, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        var (record, created) = await store.InsertAsync(job, idempotency, ct);
        if (!created) return (record, false);
        string hangfireJobId;
        try
        {
            hangfireJobId = dispatcher.Dispatch(record);
        }
        catch (Exception)
        {
            await store.DeleteUndispatchedAsync(record.Id, CancellationToken.None);
            throw;
        }
        try
        {
            await store.MarkDispatchedAsync(record.Id, hangfireJobId, CancellationToken.None);
        }
        catch (Exception e)
        {
            // Stored and dispatched; at worst the sweeper dispatches it once more, and the runner's claim
            // makes that second dispatch a no-op. Not the caller's problem.
            logger.LogWarning(e, "Could not mark job {JobId} dispatched", record.Id);
        }
        return (record, true);
    }
}
