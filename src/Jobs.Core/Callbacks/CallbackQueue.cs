using Hangfire.Common;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;

namespace Jobs.Core.Callbacks;

/// <summary>
/// Hands a finished job's callback to Hangfire, as a <see cref="CallbackSender"/> job of its own on the job's queue,
/// created in the statement that takes the right to send it (<see cref="JobCallbackStore.ClaimCallbackAsync"/>).
/// </summary>
public sealed class CallbackQueue(JobCallbackStore store) : ICallbackQueue
{
    /// <summary>Once per job (the first caller wins); false if there is none to send or it was taken already.</summary>
    public Task<bool> EnqueueAsync(Guid jobId, string queue, CancellationToken ct) =>
        store.ClaimCallbackAsync(jobId, EnqueuedHangfireJobs.For(Job.FromExpression<CallbackSender>(s => s.SendAsync(jobId, null, CancellationToken.None), queue)), ct);
}
