using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Queue;

/// <summary>
/// A worker process's heartbeat for the jobs its <see cref="Producer"/> holds: every Worker:InvisibilityTimeout / 5 one
/// statement renews all of them. It runs on a thread of its own, not the thread pool: a pool starved by busy jobs must
/// not delay a renewal (a late renewal lets the rescuer give the job to a second worker). A failed renewal is tried
/// again at the next tick (every second at most).
/// </summary>
internal sealed class Heartbeat(Producer producer, TimeSpan invisibilityTimeout, ILogger logger) : IDisposable
{
    private static readonly TimeSpan RetryEvery = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "Jobs queue heartbeat" };
        _thread.Start();
    }

    private void Run()
    {
        var renewEvery = invisibilityTimeout / 5;
        var sinceRenew = Stopwatch.StartNew();
        var tick = renewEvery < RetryEvery ? renewEvery : RetryEvery;
        var stop = _stop.Token.WaitHandle;
        while (!stop.WaitOne(tick))
        {
            if (sinceRenew.Elapsed < renewEvery) continue;
            try
            {
                producer.Renew();
                sinceRenew.Restart();
            }
            catch (Exception e)
            {
                logger.LogDebug(e, "Heartbeat failed; trying again in {Tick}", tick);
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
