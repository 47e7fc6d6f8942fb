using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Jobs.Launcher.Processes;

/// <summary>
/// Several hosts on one machine, for the fault tests and the benchmark's <c>--hosts</c> (not for the service): each host a
/// Linux network namespace with one interface, a veth pair whose other end sits on a bridge in the root namespace. The
/// addresses come from one /24 that no interface of the machine uses: the bridge (the <see cref="Gateway"/>, where each
/// host's <see cref="LinkProxy"/> to PostgreSQL listens — PostgreSQL itself on a host of its own in the benchmark, on the
/// root namespace's loopback in the tests) is .1, the hosts .2 on. Traffic stays between the harness's own namespaces and
/// the bridge; nothing else is addressed.
/// A host is partitioned with iptables inside its namespace (<see cref="NetworkHost.Cut"/>: packets dropped, no reset).
/// </summary>
/// <remarks>
/// Needs root (CI and this project's machines run as root) and <c>ip</c>/<c>iptables</c>. <see cref="Dispose"/> kills what
/// still runs in the namespaces and removes them, the bridge and its rule; a harness whose process was killed before it
/// could is removed by the next one created (its names carry the creator's process id).
/// </remarks>
public sealed class HostNetwork : IDisposable, IAsyncDisposable
{
    private const string NamespacePrefix = "jobs-h";
    private static int _created;
    private readonly string _id;
    private readonly string _bridge;
    private readonly Dictionary<string, NetworkHost> _hosts = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>The bridge's address in the root namespace: what every host reaches the root namespace's services at.</summary>
    public IPAddress Gateway { get; }

    public IReadOnlyCollection<NetworkHost> Hosts => _hosts.Values;

    public NetworkHost this[string name] => _hosts[name];

    /// <summary>Why hosts cannot be made here, or null when they can.</summary>
    public static string? Unavailable =>
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? "network namespaces are Linux's"
        : !Posix.IsRoot ? "network namespaces, veth pairs and iptables need root (run the tests as root, as CI does)"
        : Which("ip") is null || Which("iptables") is null ? "ip (iproute2) and iptables are needed"
        : null;

    private HostNetwork(string id, IPAddress gateway)
    {
        _id = id;
        _bridge = $"jh{id}";
        Gateway = gateway;
    }

    /// <summary>Creates one namespace per name, joined to a new bridge.</summary>
    public static HostNetwork Create(params string[] names)
    {
        if (Unavailable is { } why) throw new PlatformNotSupportedException($"Hosts cannot be made here: {why}.");
        RemoveStale();
        // ≤ 15 characters per interface name: "jh" + pid (hex, ≤ 6) + a letter per harness + "h" + a host number.
        var id = $"{Environment.ProcessId:x}{(char)('a' + Interlocked.Increment(ref _created) % 26)}";
        var subnet = FreeSubnet();
        var network = new HostNetwork(id, IPAddress.Parse($"{subnet}.1"));
        try
        {
            network.Build(subnet, names);
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Build(string subnet, string[] names)
    {
        Run("ip", "link", "add", _bridge, "type", "bridge");
        Run("ip", "addr", "add", $"{Gateway}/24", "dev", _bridge);
        Run("ip", "link", "set", _bridge, "up");
        // Bridged frames pass the root namespace's FORWARD chain when br_netfilter is loaded (Docker loads it, and may set
        // that chain's policy to DROP): the harness's own bridge is let through first.
        Run("iptables", "-I", "FORWARD", "1", "-i", _bridge, "-o", _bridge, "-j", "ACCEPT");
        for (var i = 0; i < names.Length; i++)
        {
            var space = $"{NamespacePrefix}{_id}-{names[i]}";
            var veth = $"{_bridge}h{i}";
            Run("ip", "netns", "add", space);
            Run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", space);
            Run("ip", "link", "set", veth, "master", _bridge, "up");
            var address = IPAddress.Parse($"{subnet}.{i + 2}");
            Run("ip", "-n", space, "addr", "add", $"{address}/24", "dev", "eth0");
            Run("ip", "-n", space, "link", "set", "eth0", "up");
            Run("ip", "-n", space, "link", "set", "lo", "up");
            _hosts[names[i]] = new NetworkHost(names[i], space, address);
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var host in _hosts.Values) RemoveNamespace(host.Namespace);
        RunQuietly("iptables", "-D", "FORWARD", "-i", _bridge, "-o", _bridge, "-j", "ACCEPT");
        RunQuietly("ip", "link", "del", _bridge);
    }

    /// <summary>Namespaces and bridges of harnesses whose process is gone (killed before it could remove them).</summary>
    private static void RemoveStale()
    {
        foreach (var space in Output("ip", "netns", "list").Split('\n').Select(l => l.Split(' ')[0]).Where(n => n.StartsWith(NamespacePrefix, StringComparison.Ordinal)))
        {
            if (OwnerIsGone(space[NamespacePrefix.Length..].Split('-')[0])) RemoveNamespace(space);
        }
        foreach (var line in Output("ip", "-o", "link", "show", "type", "bridge").Split('\n'))
        {
            var name = line.Split(':', StringSplitOptions.TrimEntries) is [_, var n, ..] ? n : "";
            if (name.StartsWith("jh", StringComparison.Ordinal) && OwnerIsGone(name[2..]))
            {
                RunQuietly("iptables", "-D", "FORWARD", "-i", name, "-o", name, "-j", "ACCEPT");
                RunQuietly("ip", "link", "del", name);
            }
        }
    }

    private static bool OwnerIsGone(string id) =>
        id.Length > 1 && int.TryParse(id[..^1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var pid)
        && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}");

    private static void RemoveNamespace(string space)
    {
        // What still runs there (a worker's python3, a process the caller did not stop) dies with it.
        foreach (var pid in Output("ip", "netns", "pids", space).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            RunQuietly("kill", "-9", pid.Trim());
        RunQuietly("ip", "netns", "del", space);
    }

    /// <summary>A 10.213.N.0/24 that no interface of the machine has an address in.</summary>
    private static string FreeSubnet()
    {
        var used = Output("ip", "-4", "-o", "addr", "show");
        var start = Environment.ProcessId % 200;
        for (var n = 0; n < 250; n++)
        {
            var subnet = $"10.213.{(start + n) % 250 + 1}";
            if (!used.Contains($" {subnet}.", StringComparison.Ordinal)) return subnet;
        }
        throw new InvalidOperationException("No free 10.213.N.0/24 for the hosts.");
    }

    internal static void Run(string program, params string[] args)
    {
        var (code, text) = Execute(program, args);
        if (code != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed (exit {code}): {text.Trim()}");
    }

    private static void RunQuietly(string program, params string[] args) => Execute(program, args);

    private static string Output(string program, params string[] args) => Execute(program, args).Text;

    private static (int Code, string Text) Execute(string program, string[] args)
    {
        var info = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string? Which(string program) =>
        new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
}

/// <summary>One host of a <see cref="HostNetwork"/>: a network namespace with one address.</summary>
public sealed class NetworkHost
{
    internal NetworkHost(string name, string space, IPAddress address) => (Name, Namespace, Address) = (name, space, address);

    public string Name { get; }
    public string Namespace { get; }
    public IPAddress Address { get; }

    /// <summary>What a program is started behind to run on this host: <c>ip netns exec</c> execs it, so it keeps its process id.</summary>
    public IReadOnlyList<string> Launch => ["ip", "netns", "exec", Namespace];

    /// <summary>A partition: every packet in and out dropped (loopback aside), none refused or reset.</summary>
    public void Cut()
    {
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-I", "INPUT", "1", "!", "-i", "lo", "-j", "DROP");
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-I", "OUTPUT", "1", "!", "-o", "lo", "-j", "DROP");
    }

    /// <summary>Cut from <paramref name="peer"/> only, both ways; the rest of the network still reaches it.</summary>
    public void CutFrom(IPAddress peer)
    {
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-I", "INPUT", "1", "-s", peer.ToString(), "-j", "DROP");
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-I", "OUTPUT", "1", "-d", peer.ToString(), "-j", "DROP");
    }

    /// <summary>One-way loss: what <paramref name="peer"/> sends here is dropped; what this host sends still arrives.</summary>
    public void DropFrom(IPAddress peer) =>
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-I", "INPUT", "1", "-s", peer.ToString(), "-j", "DROP");

    /// <summary>Lifts every cut and drop.</summary>
    public void Heal()
    {
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-F", "INPUT");
        HostNetwork.Run("ip", "netns", "exec", Namespace, "iptables", "-F", "OUTPUT");
    }
}
