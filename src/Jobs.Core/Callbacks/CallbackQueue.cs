using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Jobs.Core.SingleJobs;

namespace Jobs.Core.Callbacks;

/// <summary>Hands a finished job's callback to Hangfire, as a <see cref="CallbackSender"/> job of its own on the job's queue.</summary>
public sealed class CallbackQueue(JobCallbackStore store, IBackgroundJobClient client) : ICallbackQueue
{
    /// <summary>Once per job (the first caller wins); false if there is none to send or it was taken already.</summary>
    public async Task<bool> EnqueueAsync(Guid jobId, string queue, CancellationToken ct)
    {
        if (!await store.ClaimCallbackAsync(jobId, ct)) return false;
        client.Create(Job.FromExpression<CallbackSender>(s => s.SendAsync(jobId, null, CancellationToken.None), queue),
            new EnqueuedState(queue));
        return true;
    }
}
