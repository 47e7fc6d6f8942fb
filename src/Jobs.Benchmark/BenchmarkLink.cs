using System.Diagnostics;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>
/// The link between the measured processes (the service's API and workers, graphile-worker) and PostgreSQL:
/// <c>--rtt MS</c> puts a <see cref="LinkProxy"/> in front of PostgreSQL that adds half the round trip each way, as a
/// database on another machine would. The benchmark's own reads of the results go direct.
/// With <c>--hosts</c> PostgreSQL, the API and each worker run on a host of their own (<see cref="HostNetwork"/>), each
/// process with a link of its own, a proxy on the hosts' gateway (the root namespace) to PostgreSQL's host.
/// </summary>
internal static class BenchmarkLink
{
    private static readonly Dictionary<(string, int, string), LinkProxy> Proxies = [];

    public static double RttMs { get; set; }

    /// <summary>The hosts the API and workers run on (--hosts), else null.</summary>
    public static HostNetwork? Hosts { get; set; }

    /// <summary>--skew: worker-1's wall clock this many seconds ahead, worker-2's as many behind (<see cref="ClockShift"/>).</summary>
    public static int SkewSeconds { get; set; }

    /// <summary>The environment that shifts <paramref name="process"/>'s clock by --skew, if it is one of the two shifted.</summary>
    public static Dictionary<string, string?> Clock(string process) => (SkewSeconds, process) switch
    {
        (0, _) => [],
        (_, "worker-1") => ClockShift.By(SkewSeconds),
        (_, "worker-2") => ClockShift.By(-SkewSeconds),
        _ => [],
    };

    /// <summary>
    /// <paramref name="connectionString"/> through the link (itself with no --rtt and no --hosts); with hosts, through
    /// <paramref name="host"/>'s own link.
    /// </summary>
    public static string Through(string connectionString, string host = "")
    {
        if (RttMs <= 0 && Hosts is null) return connectionString;
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var listenOn = Hosts is null ? System.Net.IPAddress.Loopback : Hosts.Gateway;
        var key = (builder.Host!, builder.Port, Hosts is null ? "" : host);
        lock (Proxies)
        {
            if (!Proxies.TryGetValue(key, out var proxy))
                Proxies[key] = proxy = new LinkProxy(builder.Host!, builder.Port, listenOn) { Delay = TimeSpan.FromMilliseconds(RttMs / 2) };
            builder.Host = listenOn.ToString();
            builder.Port = proxy.Port;
        }
        return builder.ConnectionString;
    }

    /// <summary>The median round trip of <c>SELECT 1</c> over 200 tries, direct and through the link, in ms, for the header.</summary>
    public static async Task<string> DescribeAsync(string connectionString)
    {
        static async Task<double> MedianAsync(string cs)
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync();
            var samples = new List<double>();
            for (var i = 0; i < 200; i++)
            {
                var clock = Stopwatch.StartNew();
                await using var cmd = new NpgsqlCommand("SELECT 1", connection);
                await cmd.ExecuteScalarAsync();
                samples.Add(clock.Elapsed.TotalMilliseconds);
            }
            samples.Sort();
            return samples[samples.Count / 2];
        }
        var direct = await MedianAsync(connectionString);
        if (RttMs <= 0 && Hosts is null && SkewSeconds == 0) return $"PostgreSQL on loopback (SELECT 1 round trip, median: {direct:F3} ms)";
        var through = await MedianAsync(Through(connectionString));
        var hosts = Hosts is null ? "" : $"; PostgreSQL, the API and workers on hosts of their own (network namespaces, {Hosts.Gateway}/24), each process with its own link";
        if (SkewSeconds != 0) hosts += $"; worker-1's clock {SkewSeconds:+0;-0} s, worker-2's {-SkewSeconds:+0;-0} s";
        return $"PostgreSQL behind a delaying proxy, --rtt {RttMs} ms (SELECT 1 round trip, median: {through:F3} ms through it, {direct:F3} ms direct){hosts}";
    }
}
