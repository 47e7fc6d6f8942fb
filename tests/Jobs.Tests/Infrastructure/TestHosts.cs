using System.Net;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// Hosts for one test (<see cref="HostNetwork"/>: network namespaces on a bridge), each with its own link to the fixture's
/// PostgreSQL — a <see cref="LinkProxy"/> on the bridge's address, since PostgreSQL listens on the root namespace's
/// loopback — so a host can be partitioned by iptables in its namespace (<see cref="NetworkHost.Cut"/>) or its link alone
/// slowed or held (<see cref="Link"/>). Processes are started on a host by the fixture (<c>StartWorker(…, host:)</c>).
/// </summary>
public sealed class TestHosts : IAsyncDisposable
{
    private readonly HostNetwork _network;
    private readonly Dictionary<string, (LinkProxy Proxy, string ConnectionString)> _links;

    private TestHosts(HostNetwork network, Dictionary<string, (LinkProxy, string)> links) => (_network, _links) = (network, links);

    public static TestHosts Create(TestDatabase database, params string[] names)
    {
        var network = HostNetwork.Create(names);
        return new TestHosts(network, names.ToDictionary(n => n, _ => LinkProxy.For(database.ConnectionString, network.Gateway)));
    }

    public NetworkHost this[string name] => _network[name];

    /// <summary>The root namespace's address on the hosts' network: where they reach the test process's servers.</summary>
    public IPAddress Gateway => _network.Gateway;

    /// <summary>The host's link to PostgreSQL.</summary>
    public LinkProxy Link(string name) => _links[name].Proxy;

    /// <summary>The fixture's database as <paramref name="name"/> reaches it: through its link.</summary>
    public string ConnectionString(string name) => _links[name].ConnectionString;

    public async ValueTask DisposeAsync()
    {
        _network.Dispose(); // first: what still runs on the hosts is killed, not left hanging on a held link
        foreach (var (proxy, _) in _links.Values) await proxy.DisposeAsync();
    }
}
