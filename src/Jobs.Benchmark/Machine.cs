using System.Runtime.InteropServices;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>What the figures were measured on, printed with them.</summary>
public static class Machine
{
    public static async Task<string> DescribeAsync(string connectionString)
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = File.Exists("/proc/meminfo")
            ? File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal)) is { } m
                ? $"{long.Parse(m.Split(':', 2)[1].Trim().Split(' ')[0]) / 1024.0 / 1024.0:F0} GiB RAM" : null
            : null;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return $"{Environment.ProcessorCount} cores ({cpu ?? RuntimeInformation.ProcessArchitecture.ToString()}), {memory ?? "? RAM"}, " +
               $"{RuntimeInformation.OSDescription}, .NET {Environment.Version}, PostgreSQL {reader.GetString(0)} " +
               $"(fsync {reader.GetString(1)}, synchronous_commit {reader.GetString(2)})";
    }
}
