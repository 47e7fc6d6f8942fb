using System.Runtime.InteropServices;

namespace Jobs.Benchmark;

/// <summary>
/// What the benchmark started (PostgreSQL, API and worker processes), stopped on every way out: the normal end,
/// Ctrl+C, SIGTERM, and a stuck job (<see cref="FailAsync"/>), so nothing is left running behind it.
/// </summary>
public static class Shutdown
{
    private static readonly List<IAsyncDisposable> Started = [];
    private static readonly List<PosixSignalRegistration> Signals = [];
    private static int _exiting;

    /// <summary>Stops everything registered, newest first, when a signal arrives.</summary>
    public static void Install()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT })
            Signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                Console.Error.WriteLine($"benchmark: {context.Signal}, stopping what it started…");
                _ = ExitAsync(128 + (context.Signal == PosixSignal.SIGINT ? 2 : context.Signal == PosixSignal.SIGTERM ? 15 : 3));
            }));
    }

    public static T Register<T>(T started) where T : IAsyncDisposable
    {
        lock (Started) Started.Add(started);
        return started;
    }

    public static void Unregister(IAsyncDisposable stopped)
    {
        lock (Started) Started.Remove(stopped);
    }

    /// <summary>Prints why, stops everything, and ends the run with exit code 3.</summary>
    public static Task FailAsync(string why)
    {
        Console.Error.WriteLine($"benchmark FAILED: {why}");
        return ExitAsync(3);
    }

    private static async Task ExitAsync(int code)
    {
        if (Interlocked.Exchange(ref _exiting, 1) == 1) return;
        IAsyncDisposable[] all;
        lock (Started) all = [.. Started];
        foreach (var started in all.Reverse())
        {
            try
            {
                await started.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"benchmark: could not stop {started}: {e.Message}");
            }
        }
        Environment.Exit(code);
    }
}
