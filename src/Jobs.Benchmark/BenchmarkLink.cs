using System.Diagnostics;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>
/// The link between the measured processes (the service's API and workers, graphile-worker) and PostgreSQL:
/// <c>--rtt MS</c> puts a <see cref="LinkProxy"/> in front of PostgreSQL that adds half the round trip each way, as a
/// database on another machine would. The benchmark's own reads of the results go direct.
/// </summary>
internal static class BenchmarkLink
{
    private static readonly Dictionary<(string, int), LinkProxy> Proxies = [];

    public static double RttMs { get; set; }

    /// <summary><paramref name="connectionString"/> through the link (itself with no --rtt).</summary>
    public static string Through(string connectionString)
    {
        if (RttMs <= 0) return connectionString;
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        lock (Proxies)
        {
            if (!Proxies.TryGetValue((builder.Host!, builder.Port), out var proxy))
                Proxies[(builder.Host!, builder.Port)] = proxy = new LinkProxy(builder.Host!, builder.Port) { Delay = TimeSpan.FromMilliseconds(RttMs / 2) };
            builder.Host = "127.0.0.1";
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
        if (RttMs <= 0) return $"PostgreSQL on loopback (SELECT 1 round trip, median: {direct:F3} ms)";
        var through = await MedianAsync(Through(connectionString));
        return $"PostgreSQL behind a delaying proxy, --rtt {RttMs} ms (SELECT 1 round trip, median: {through:F3} ms through it, {direct:F3} ms direct)";
    }
}
