using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Queue.Maintenance;

/// <summary>
/// The rescuer's first duty, on a thread of its own (a thread pool busy with jobs must not delay it): twice a second, gives
/// back the fetches nobody renewed for Worker:InvisibilityTimeout — their process died or hung.
/// </summary>
public sealed class AbandonedFetches(JobQueueStore queue, TimeSpan invisibilityTimeout, ILogger logger)
{
    // Twice a second: a dead worker's job comes back at most half a second after its fetch expired (a SELECT 1 or
    // one UPDATE each time; under a chaos soak beside the suite, a 1-s tick made a re-run take 11.4 s after a kill -9).
    private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Gives back fetches nobody renewed. After PostgreSQL was unreachable every process's renewals failed alike, so every
    /// fetch looks abandoned when it comes back: this gives back only after one whole InvisibilityTimeout of statements
    /// that succeeded — time for every live process's heartbeat to renew its own.
    /// </summary>
    public void GiveBack(CancellationToken stop)
    {
        var healthy = Stopwatch.StartNew(); // since the last failed statement (or the start)
        while (!stop.WaitHandle.WaitOne(Every))
        {
            try
            {
                if (healthy.Elapsed < invisibilityTimeout) queue.Ping();
                else if (queue.GiveBackAbandoned(invisibilityTimeout) is > 0 and var given)
                    logger.LogWarning("Gave back {Count} job(s) whose worker process stopped renewing them", given);
            }
            catch (Exception e)
            {
                healthy.Restart();
                logger.LogDebug(e, "Abandoned-fetch rescue failed; trying again in {Every}", Every);
            }
        }
    }
}
