using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Launcher.Postgres;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>
/// The chaos soak (issue 11): a mixed load — single jobs, batches, maps, cancels, timeouts, retries, Python calls and
/// results JSON cannot carry — while worker processes are killed -9 and restarted at random, the API is killed and
/// restarted, and PostgreSQL is restarted. The invariant watch runs throughout. At the end every accepted job and
/// map must have ended; the figures (accepted, ended, duplicates, violations, faults) are printed, and the exit code
/// is 0 only when nothing was left unfinished and no violation was seen.
/// </summary>
public static class ChaosScenario
{
    private const int Workers = 3;

    public static async Task<int> RunAsync(LocalPostgres postgres, int seconds, int ratePerSecond)
    {
        await using var system = await JobsSystem.StartAsync(postgres, "chaos_jobs", Workers, concurrency: 64);
        system.FailOnViolation = false;
        var http = system.Http;
        var accepted = new ConcurrentDictionary<Guid, string>();
        var maps = new ConcurrentDictionary<Guid, int>();
        long refused = 0, cancels = 0;
        var refusals = new ConcurrentDictionary<string, int>();
        var faults = new ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var random = new Random(11);
        Console.WriteLine($"chaos: {seconds} s, ~{ratePerSecond} submissions/s of mixed work, {Workers} workers; worker kill -9 every 15–45 s, API kill every ~2 min, PostgreSQL restart every ~4 min");

        async Task<Guid?> SubmitAsync(string path, object body, string kind)
        {
            try
            {
                using var response = await http.PostAsJsonAsync(path, body);
                if ((int)response.StatusCode != 202)
                {
                    Interlocked.Increment(ref refused);
                    refusals.AddOrUpdate(((int)response.StatusCode).ToString(), 1, (_, n) => n + 1);
                    return null;
                }
                var id = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
                if (path == "/maps") maps[id] = 0; else accepted[id] = kind;
                return id;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
            {
                Interlocked.Increment(ref refused);
                refusals.AddOrUpdate("no answer", 1, (_, n) => n + 1);
                return null;
            }
        }

        var load = Task.Run(async () =>
        {
            var n = 0;
            var interval = TimeSpan.FromSeconds(1.0 / ratePerSecond);
            var next = TimeSpan.Zero;
            while (!stop.IsCancellationRequested)
            {
                next += interval;
                if (next - clock.Elapsed is { Ticks: > 0 } wait) await Task.Delay(wait);
                n++;
                _ = (n % 20) switch
                {
                    0 => SubmitAsync("/maps", new { function = "math.square", items = Enumerable.Range(0, 100) }, "map"),
                    1 => Task.WhenAll(Enumerable.Range(0, 20).Select(i => SubmitAsync("/jobs", new { function = "math.square", args = new[] { i } }, "batch"))),
                    2 => SubmitAsync("/jobs", new { function = "debug.fail", args = new[] { "chaos" }, retries = 2 }, "retried failure"),
                    3 => SubmitAsync("/jobs", new { function = "time.sleep", args = new[] { 5 }, timeoutSeconds = 0.5 }, "timeout"),
                    4 => CancelLaterAsync(),
                    5 => SubmitAsync("/jobs", new { function = "py:pool_examples.square", args = new[] { n } }, "python"),
                    6 => SubmitAsync("/jobs", new { function = "py:pool_examples.not_json" }, "python, not JSON"),
                    7 => SubmitAsync("/jobs", new { function = "math.pow", args = new object[] { -1, 0.5 } }, "NaN result"),
                    8 => SubmitAsync("/jobs", new { function = "time.sleep", args = new[] { 2 } }, "sleep"),
                    9 => SubmitAsync("/jobs", new { function = "noop", delaySeconds = 3 }, "delayed"),
                    _ => SubmitAsync("/jobs", new { function = "noop" }, "noop"),
                };
            }
        });

        async Task CancelLaterAsync()
        {
            if (await SubmitAsync("/jobs", new { function = "time.sleep", args = new[] { 10 } }, "canceled") is not { } id) return;
            await Task.Delay(TimeSpan.FromSeconds(1 + random.NextDouble()));
            try { using var _ = await http.DeleteAsync($"/jobs/{id}"); Interlocked.Increment(ref cancels); }
            catch (HttpRequestException) { }
        }

        var chaos = Task.Run(async () =>
        {
            var nextApiKill = TimeSpan.FromSeconds(120);
            var nextRestart = TimeSpan.FromSeconds(240);
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(TimeSpan.FromSeconds(15 + random.Next(30)), stop.Token); }
                catch (OperationCanceledException) { return; }
                await system.KillAndRestartAsync(1 + random.Next(Workers), TimeSpan.FromSeconds(random.Next(1, 4)));
                faults.AddOrUpdate("worker kill -9", 1, (_, c) => c + 1);
                if (clock.Elapsed > nextApiKill)
                {
                    await system.KillAndRestartAsync(0, TimeSpan.FromSeconds(2));
                    faults.AddOrUpdate("API kill -9", 1, (_, c) => c + 1);
                    nextApiKill += TimeSpan.FromSeconds(120);
                }
                if (clock.Elapsed > nextRestart)
                {
                    await postgres.StopAsync();
                    await Task.Delay(TimeSpan.FromSeconds(5));
                    await postgres.RestartAsync();
                    faults.AddOrUpdate("PostgreSQL restart", 1, (_, c) => c + 1);
                    nextRestart += TimeSpan.FromSeconds(240);
                }
            }
        });

        while (!stop.IsCancellationRequested)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(60), stop.Token); } catch (OperationCanceledException) { }
            Console.WriteLine($"  t={clock.Elapsed.TotalSeconds:F0} s: {accepted.Count} jobs and {maps.Count} maps accepted, {Interlocked.Read(ref refused)} refused, " +
                              $"faults: {string.Join(", ", faults.Select(f => $"{f.Value} × {f.Key}"))}, violations so far: {system.Violations}");
        }
        await load;
        await chaos;

        // Every accepted job and map must end. Give the last retries, delays and re-runs time, and a backlog (a busy
        // machine may fall behind the offered load) as long as it keeps shrinking: a job that waits is the invariant
        // watch's business, and it reports any on no path to an end. No progress for 2 minutes, or 20 minutes in
        // all, ends the drain and fails the run.
        var drain = Stopwatch.StartNew();
        var progress = Stopwatch.StartNew();
        (long Unfinished, long UnfinishedMaps) left = (-1, -1);
        var fewest = long.MaxValue;
        while (drain.Elapsed < TimeSpan.FromMinutes(20) && progress.Elapsed < TimeSpan.FromMinutes(2))
        {
            try
            {
                left = await UnfinishedAsync(system.Db, [.. accepted.Keys], [.. maps.Keys]);
                if (left is (0, 0)) break;
                if (left.Unfinished + left.UnfinishedMaps < fewest) { fewest = left.Unfinished + left.UnfinishedMaps; progress.Restart(); }
            }
            catch (NpgsqlException) { }
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        Console.WriteLine($"  drained in {drain.Elapsed.TotalSeconds:F0} s");

        await using var figures = system.Db.CreateCommand("""
            SELECT state, count(*), coalesce(sum(crashes), 0), count(*) FILTER (WHERE crashes > 0) FROM jobs.job WHERE id = ANY($1) GROUP BY state ORDER BY state
            """);
        figures.Parameters.Add(new() { Value = accepted.Keys.ToArray() });
        var byState = new List<string>();
        long reruns = 0, rerunJobs = 0;
        await using (var reader = await figures.ExecuteReaderAsync())
            while (await reader.ReadAsync())
            {
                byState.Add($"{reader.GetInt64(1)} {reader.GetString(0)}");
                reruns += reader.GetInt64(2);
                rerunJobs += reader.GetInt64(3);
            }
        long mapItemReruns;
        await using (var items = system.Db.CreateCommand("SELECT coalesce(sum(greatest(attempts - 1, 0)), 0)::bigint FROM jobs.map_chunk WHERE map_id = ANY($1)"))
        {
            items.Parameters.Add(new() { Value = maps.Keys.ToArray() });
            mapItemReruns = (long)(await items.ExecuteScalarAsync())!;
        }
        Console.WriteLine($"""
            chaos soak, {seconds} s of load ({clock.Elapsed.TotalSeconds:F0} s with the drain):
              accepted:    {accepted.Count} jobs ({string.Join(", ", accepted.Values.GroupBy(k => k).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"))}) and {maps.Count} maps of 100 items; {Interlocked.Read(ref refused)} submissions refused or unanswered during faults (not accepted: {string.Join(", ", refusals.OrderBy(r => r.Key).Select(r => $"{r.Value} × {r.Key}"))})
              ended:       {string.Join(", ", byState)}; unfinished jobs: {left.Unfinished}, unfinished maps: {left.UnfinishedMaps}
              duplicates:  {reruns} runs lost to a process death and run again, over {rerunJobs} jobs (at-least-once); {mapItemReruns} map chunk re-runs
              faults:      {string.Join(", ", faults.Select(f => $"{f.Value} × {f.Key}"))}; {Interlocked.Read(ref cancels)} cancels sent
              violations:  {system.Violations} (invariant watch, bound {JobsSystem.StuckAfter.TotalSeconds:0} s)
            """);
        return left is (0, 0) && system.Violations == 0 ? 0 : 1;
    }

    private static async Task<(long, long)> UnfinishedAsync(NpgsqlDataSource db, Guid[] jobs, Guid[] maps)
    {
        await using var cmd = db.CreateCommand("""
            SELECT (SELECT count(*) FROM jobs.job WHERE id = ANY($1) AND state NOT IN ('succeeded', 'failed', 'canceled')),
                   (SELECT count(*) FROM jobs.map WHERE id = ANY($2) AND state NOT IN ('succeeded', 'failed', 'canceled'))
            """);
        cmd.Parameters.Add(new() { Value = jobs });
        cmd.Parameters.Add(new() { Value = maps });
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
