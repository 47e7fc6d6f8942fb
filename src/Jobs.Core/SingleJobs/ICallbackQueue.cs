namespace Jobs.Core.SingleJobs;

/// <summary>
/// Where a job with a <c>callbackUrl</c> goes when it finishes: the Callbacks feature (which reads jobs, so the job
/// feature knows it only by this).
/// </summary>
public interface ICallbackQueue
{
    /// <summary>Queues the callback of finished job <paramref name="jobId"/> once; false when there is none or it was queued already.</summary>
    Task<bool> EnqueueAsync(Guid jobId, string queue, CancellationToken ct);
}
