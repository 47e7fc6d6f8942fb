using System.Diagnostics;
using System.Net.Http.Json;
using Jobs.Launcher.Postgres;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>
/// The soak: a steady mixed load (single jobs at a fixed rate, a 1,000-item map every 10 s) for a given time,
/// reporting every 30 s the errors, throughput and resident memory of every process. Not part of CI.
/// </summary>
public static class SoakScenario
{
    public static async Task RunAsync(LocalPostgres postgres, BenchmarkOptions options, int seconds, int ratePerSecond)
    {
        await using var system = await JobsSystem.StartAsync(postgres, "soak_jobs", options.Workers, concurrency: 64);
        var http = system.Http;
        var db = system.Db;
        var processes = system.Processes;
        long submitted = 0, errors = 0, mapItems = 0;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));

        var load = Task.Run(async () =>
        {
            var next = TimeSpan.Zero;
            var interval = TimeSpan.FromSeconds(1.0 / ratePerSecond);
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                next += interval;
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero) await Task.Delay(wait).ConfigureAwait(false);
                n++;
                object body = (n % 3) switch
                {
                    0 => new { function = "noop" },
                    1 => new { function = "math.square", args = new[] { n } },
                    _ => new { function = "text.sha256", args = new object[] { $"soak {n}" }, kwargs = new { rounds = 10 } },
                };
                _ = Submit("/jobs", body, 1);
                if (n % (ratePerSecond * 10) == 0)
                    _ = Submit("/maps", new { function = "math.square", items = Enumerable.Range(0, 1000) }, 1000);
            }
        });

        async Task Submit(string path, object body, int items)
        {
            try
            {
                using var response = await http.PostAsJsonAsync(path, body);
                if ((int)response.StatusCode == 202)
                {
                    Interlocked.Increment(ref submitted);
                    if (items > 1) Interlocked.Add(ref mapItems, items);
                }
                else Interlocked.Increment(ref errors);
            }
            catch (Exception)
            {
                Interlocked.Increment(ref errors);
            }
        }

        Console.WriteLine($"soak: {seconds} s at {ratePerSecond} jobs/s (a third each noop, math.square, text.sha256×10) + a 1,000-item map every 10 s; {options.Workers} workers");
        Console.WriteLine("| t (s) | submitted | errors | jobs done | jobs/s (last 30 s) | map items done | failed | RSS MiB: " +
                          string.Join(" / ", processes.Select(p => p.Name)) + " / postgres (all processes, PSS) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---|");
        long lastDone = 0;
        var lastAt = TimeSpan.Zero;
        while (!stop.IsCancellationRequested || clock.Elapsed < TimeSpan.FromSeconds(seconds + 30))
        {
            await Task.Delay(TimeSpan.FromSeconds(30));
            var (done, failed, items) = await CountsAsync(db);
            var now = clock.Elapsed;
            var rate = (done - lastDone) / (now - lastAt).TotalSeconds;
            (lastDone, lastAt) = (done, now);
            Console.WriteLine($"| {now.TotalSeconds:F0} | {Interlocked.Read(ref submitted)} | {Interlocked.Read(ref errors)} | {done} | {rate:F1} | {items} | {failed} | " +
                              string.Join(" / ", processes.Select(p => Rss(p.Id).ToString("F0"))) + $" / {PostgresRss(postgres.DataDirectory):F0} |");
            if (stop.IsCancellationRequested && now > TimeSpan.FromSeconds(seconds + 30)) break;
        }
        await load;
        var (finalDone, finalFailed, finalItems) = await CountsAsync(db);
        Console.WriteLine($"soak done: {Interlocked.Read(ref submitted)} accepted submissions, {Interlocked.Read(ref errors)} errors, " +
                          $"{finalDone} jobs succeeded, {finalFailed} failed, {finalItems} of {Interlocked.Read(ref mapItems)} map items done");
    }

    private static async Task<(long Done, long Failed, long Items)> CountsAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand("""
            SELECT (SELECT count(*) FROM jobs.job WHERE state = 'succeeded'), (SELECT count(*) FROM jobs.job WHERE state = 'failed'),
                   (SELECT coalesce(sum(succeeded), 0) FROM jobs.map) + (SELECT coalesce(sum(succeeded), 0) FROM jobs.map_tally)
            """);
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>Resident memory of a process, from /proc (Linux).</summary>
    internal static double Rss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Proportional set size: shared memory (PostgreSQL's buffers) split among the processes sharing it.</summary>
    private static double Pss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/smaps_rollup").FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
            return line is null ? Rss(pid) : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Rss(pid);
        }
    }

    /// <summary>The postmaster and all its children (backends, checkpointer, …), by PSS so shared buffers count once.</summary>
    private static double PostgresRss(string dataDirectory)
    {
        if (CpuCensus.Postmaster(dataDirectory) is not { } postmaster) return 0;
        var total = Pss(postmaster);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (ppid == postmaster) total += Pss(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        }
        return total;
    }
}
