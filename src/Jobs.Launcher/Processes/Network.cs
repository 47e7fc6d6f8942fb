using System.Net;
using System.Net.Sockets;

namespace Jobs.Launcher.Processes;

public static class Network
{
    /// <summary>A TCP port on 127.0.0.1 (or <paramref name="address"/>) that nothing listens on right now.</summary>
    public static int FreePort(IPAddress? address = null)
    {
        using var listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// Polls <c>{api}/health/ready</c> until it answers 2xx; fails early, with <paramref name="explain"/>'s text,
    /// when <paramref name="gaveUp"/> says the processes behind it have died.
    /// </summary>
    public static async Task WaitForReadyAsync(Uri api, Func<bool> gaveUp, Func<string> explain, TimeSpan timeout, CancellationToken ct = default)
    {
        using var http = new HttpClient { BaseAddress = api, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (gaveUp()) throw new InvalidOperationException($"A process exited during start-up. {explain()}");
            try
            {
                if ((await http.GetAsync("/health/ready", ct)).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"{api}health/ready did not answer within {timeout.TotalSeconds:F0} s. {explain()}");
    }
}
