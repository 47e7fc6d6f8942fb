using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Jobs.Launcher;

/// <summary>
/// Where the API listens (the first of Api:Urls) and where this machine reaches it. A wildcard host (0.0.0.0, *, +,
/// [::]) is an address to listen on, not one to connect to — .NET refuses to send a request to 0.0.0.0 — so the
/// launcher probes readiness, and prints the URL, on loopback. Without API keys the API listens on loopback only,
/// whatever Api:Urls says (Jobs.Api's ApiHostExtensions), so then any host but a loopback one is reached on 127.0.0.1.
/// </summary>
public sealed partial record ApiAddress(string Listen, Uri Local, bool AllInterfaces, IPAddress Bind)
{
    /// <summary>The API's address from Api:Urls; <paramref name="keys"/>: whether Auth:ApiKeys are configured.</summary>
    public static ApiAddress Parse(string urls, bool keys)
    {
        var listen = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault()?.TrimEnd('/') ?? "";
        var match = UrlPattern().Match(listen);
        if (!match.Success)
            throw new InvalidOperationException($"Api:Urls: '{listen}' is not a URL such as http://127.0.0.1:5080 or http://0.0.0.0:5080.");
        var host = match.Groups["host"].Value.ToLowerInvariant();
        var wildcard = host is "0.0.0.0" or "*" or "+" or "[::]";
        var loopback = host is "localhost" or "127.0.0.1" or "[::1]";
        // Kestrel binds an IP as given, "localhost" on loopback, and "*", "+" or a host name on every interface (IPv6 dual mode).
        var bind = !keys && !loopback ? IPAddress.Loopback
            : IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? ip
            : host == "localhost" ? IPAddress.Loopback
            : IPAddress.IPv6Any;
        var local = new Uri($"{match.Groups["scheme"].Value.ToLowerInvariant()}://{(wildcard || !keys && !loopback ? "127.0.0.1" : host)}{match.Groups["port"].Value}");
        return new ApiAddress(listen, local, keys && wildcard, bind);
    }

    /// <summary>The URL to use on this machine, without a trailing slash.</summary>
    public string LocalUrl => Local.ToString().TrimEnd('/');

    /// <summary>
    /// Fails, naming the port, when something already listens where the API would (the API would die at start with
    /// its stack trace, after PostgreSQL and the migrations). Any other bind problem is left to the API to report.
    /// </summary>
    public void EnsurePortFree()
    {
        try
        {
            using var socket = new Socket(Bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            // As Kestrel does on Unix: a port whose last connections are in TIME_WAIT is free; one with a listener is not.
            if (!OperatingSystem.IsWindows()) socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (Bind.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(new IPEndPoint(Bind, Local.Port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new InvalidOperationException(
                $"Api:Urls: port {Local.Port} is already in use ({Listen}); stop what listens there or choose another port (Api__Urls).");
        }
        catch (SocketException)
        {
            // e.g. no IPv6 here, or an address this machine does not have
        }
    }

    [GeneratedRegex(@"^(?<scheme>https?)://(?<host>\[[0-9a-fA-F:.]*\]|[^:/\[\]]+)(?<port>:\d{1,5})?$", RegexOptions.IgnoreCase)]
    private static partial Regex UrlPattern();
}
