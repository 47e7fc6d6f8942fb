using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Jobs.Launcher.Processes;

/// <summary>
/// A TCP proxy standing for the network between one host and PostgreSQL (for the fault tests and the benchmark's
/// <c>--rtt</c>, not for the service): clients connect to <see cref="Port"/> on
/// 127.0.0.1 and reach <c>upstream</c>. <see cref="Cut"/> makes it a partition — bytes in both directions are held,
/// not dropped and not reset, as a cut link whose packets are lost and retransmitted later; <see cref="Heal"/> lets
/// them through again, in order. <see cref="Delay"/> adds a one-way delay to every byte in each direction (half a round
/// trip). The kernel here has no netem; this is how tests and the benchmark get a slow or cut link.
/// </summary>
public sealed class LinkProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _open = Opened();
    private readonly Task _accepting;

    /// <param name="listenOn">Where clients connect: 127.0.0.1 unless given (a <see cref="HostNetwork"/>'s gateway, for its hosts).</param>
    public LinkProxy(string upstreamHost, int upstreamPort, IPAddress? listenOn = null)
    {
        (_upstreamHost, _upstreamPort) = (upstreamHost, upstreamPort);
        _listener = new TcpListener(listenOn ?? IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>A proxy to the server of <paramref name="connectionString"/>, and that connection string through it.</summary>
    public static (LinkProxy Proxy, string ConnectionString) For(string connectionString, IPAddress? listenOn = null)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var proxy = new LinkProxy(builder.Host!, builder.Port, listenOn);
        builder.Host = (listenOn ?? IPAddress.Loopback).ToString();
        builder.Port = proxy.Port;
        return (proxy, builder.ConnectionString);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>One-way delay added to every byte, each direction.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>
    /// Up to this much more, drawn anew for every chunk (uniformly); bytes still arrive in order, as on one TCP stream: a
    /// chunk never overtakes the one before it.
    /// </summary>
    public TimeSpan Jitter { get; set; }

    public bool IsCut { get; private set; }

    /// <summary>Holds every byte in both directions from now on: connections hang, none is reset.</summary>
    public void Cut()
    {
        lock (_lock)
        {
            if (IsCut) return;
            IsCut = true;
            _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Lets the held bytes, and all after them, through again.</summary>
    public void Heal()
    {
        lock (_lock)
        {
            IsCut = false;
            _open.TrySetResult();
        }
    }

    private static TaskCompletionSource Opened()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    private Task WhenOpen()
    {
        lock (_lock) return _open.Task;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        lock (_lock)
        {
            _connections.Add(client);
            _connections.Add(upstream);
        }
        try
        {
            await WhenOpen().WaitAsync(_stop.Token); // a connection attempt during a cut hangs too
            await upstream.ConnectAsync(_upstreamHost, _upstreamPort, _stop.Token);
            client.NoDelay = upstream.NoDelay = true;
            await Task.WhenAny(PumpAsync(client.GetStream(), upstream.GetStream()), PumpAsync(upstream.GetStream(), client.GetStream()));
        }
        catch (Exception) { }
        finally
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    /// <summary>
    /// Copies <paramref name="from"/> to <paramref name="to"/> through a delay line: each chunk read is written
    /// <see cref="Delay"/> after it was read (reading goes on meanwhile, so the delay adds latency, not a throughput
    /// limit), and only while the link is not cut. The writing side is a thread of its own that sleeps with the kernel's
    /// high-resolution timer (<c>nanosleep</c>): .NET's timers wake every few milliseconds here, too coarse for a 0.25-ms leg.
    /// </summary>
    private async Task PumpAsync(Stream from, Stream to)
    {
        using var line = new BlockingCollection<(byte[] Bytes, int Count, long Due)>();
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { Write(line, to); }
            catch (Exception) { }
            finally { writing.TrySetResult(); }
        }) { IsBackground = true, Name = "link proxy" }.Start();
        try
        {
            var previous = 0L;
            while (true)
            {
                var buffer = new byte[64 * 1024];
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0) return;
                var delay = Delay + (Jitter > TimeSpan.Zero ? Jitter * Random.Shared.NextDouble() : TimeSpan.Zero);
                previous = Math.Max(previous, Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency));
                line.Add((buffer, read, previous));
            }
        }
        finally
        {
            line.CompleteAdding();
            await writing.Task;
        }
    }

    private void Write(BlockingCollection<(byte[] Bytes, int Count, long Due)> line, Stream to)
    {
        foreach (var (bytes, count, due) in line.GetConsumingEnumerable(_stop.Token))
        {
            while (Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due) is { Ticks: > 0 } wait) Sleep(wait);
            WhenOpen().Wait(_stop.Token);
            to.Write(bytes, 0, count);
        }
    }

    private static void Sleep(TimeSpan wait)
    {
        var ts = new Timespec { Seconds = (long)wait.TotalSeconds, Nanoseconds = wait.Ticks % TimeSpan.TicksPerSecond * 100 };
        NativeSleep(ref ts, IntPtr.Zero);
    }

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc.so.6", EntryPoint = "nanosleep", SetLastError = true)]
    private static extern int NativeSleep(ref Timespec duration, IntPtr remaining);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_lock)
        {
            foreach (var connection in _connections) connection.Dispose();
            _open.TrySetResult();
        }
        try { await _accepting; } catch (Exception) { }
        _stop.Dispose();
    }
}
