using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Launcher;

/// <summary>The fault tests' and the benchmark's stand-in for a network: delay, cut (no reset), heal — on loopback.</summary>
public sealed class LinkProxyFacts
{
    [Fact]
    public async Task A_delayed_link_adds_its_round_trip_and_a_cut_holds_bytes_until_it_heals()
    {
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        _ = Task.Run(async () =>
        {
            using var server = await echo.AcceptTcpClientAsync();
            var stream = server.GetStream();
            var buffer = new byte[1];
            while (await stream.ReadAsync(buffer) == 1) await stream.WriteAsync(buffer);
        });
        await using var link = new LinkProxy("127.0.0.1", ((IPEndPoint)echo.LocalEndpoint).Port) { Delay = TimeSpan.FromMilliseconds(5) };
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, link.Port);
        var stream = client.GetStream();
        var one = new byte[1];

        async Task<TimeSpan> RoundTripAsync()
        {
            var clock = Stopwatch.StartNew();
            await stream.WriteAsync(new byte[] { 7 });
            Assert.Equal(1, await stream.ReadAsync(one));
            return clock.Elapsed;
        }
        await RoundTripAsync();
        var delayed = await RoundTripAsync();
        Assert.InRange(delayed.TotalMilliseconds, 9, 100); // two 5-ms legs (.NET timers wake on whole milliseconds, within one)

        link.Cut();
        var held = RoundTripAsync();
        await Task.Delay(500);
        Assert.False(held.IsCompleted);
        link.Heal();
        var after = await held.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(after >= TimeSpan.FromMilliseconds(500), $"{after.TotalMilliseconds} ms");
    }
}
