using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Queue;

/// <summary>
/// A worker process's heartbeat for the jobs it holds: every Worker:InvisibilityTimeout / 5 one statement renews all
/// of them, and every second one statement gives back any fetch, of any process, that went unrenewed for
/// Worker:InvisibilityTimeout. It runs on a thread of its own, not the thread pool: a pool starved by busy jobs
/// must not delay a renewal (a late renewal lets a second worker run the job too).
/// <para>
/// After PostgreSQL was unreachable every process's renewals failed alike, so every fetch looks abandoned when it
/// comes back. A process therefore rescues only after one whole InvisibilityTimeout of statements that succeeded —
/// time for every live process to renew its own — and a failed renewal is tried again at the next tick.
/// </para>
/// </summary>
internal sealed class Liveness(Producer queue) : IDisposable
{
    private static readonly TimeSpan RescueEvery = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "Jobs queue liveness" };
        _thread.Start();
    }

    private void Run()
    {
        var renewEvery = queue.InvisibilityTimeout / 5;
        var sinceRenew = Stopwatch.StartNew();
        var sinceRescue = Stopwatch.StartNew();
        var healthy = Stopwatch.StartNew(); // since the last failed statement (or the start)
        var tick = renewEvery < RescueEvery ? renewEvery : RescueEvery;
        var stop = _stop.Token.WaitHandle;
        while (!stop.WaitOne(tick))
        {
            try
            {
                if (sinceRenew.Elapsed >= renewEvery)
                {
                    queue.Renew();
                    sinceRenew.Restart();
                }
                if (sinceRescue.Elapsed >= RescueEvery && healthy.Elapsed >= queue.InvisibilityTimeout)
                {
                    sinceRescue.Restart();
                    if (queue.RescueAbandoned() is > 0 and var rescued)
                        queue.Logger.LogWarning("Gave back {Count} job(s) whose worker process stopped renewing them", rescued);
                }
            }
            catch (Exception e)
            {
                healthy.Restart();
                queue.Logger.LogDebug(e, "Queue heartbeat failed; trying again in {Tick}", tick);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        // A thread still blocked in a statement (PostgreSQL unreachable) ends at its next wait: leave it its handle.
        if (_thread?.Join(TimeSpan.FromSeconds(5)) != false) _stop.Dispose();
    }
}
