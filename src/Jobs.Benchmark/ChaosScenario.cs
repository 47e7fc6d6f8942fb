using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>
/// The chaos soak (issue 11): a mixed load — single jobs, batches, maps, cancels, timeouts, retries, Python calls and
/// results JSON cannot carry — while worker processes are killed -9 and restarted at random, the API is killed and
/// restarted, and PostgreSQL is restarted; with <c>--hosts</c> (issue 26) PostgreSQL, the API and workers run on hosts of their own,
/// and a random one is partitioned every 30 s, for 2–20 s (beyond the workers' 8-s invisibility timeout about two times
/// in three). The invariant watch runs throughout; a trigger records any change to a finished job's outcome (a second
/// outcome); a receiver counts the callbacks of the jobs that asked for one. At the end every accepted job and map
/// must have ended; the figures (accepted, ended, duplicates, violations, second outcomes, callbacks, faults) are
/// printed, and the exit code is 0 only when nothing was left unfinished, no violation or second outcome was seen and
/// every callback arrived.
/// </summary>
public static class ChaosScenario
{
    public const int Workers = 3;

    public static async Task<int> RunAsync(LocalPostgres postgres, int seconds, int ratePerSecond)
    {
        await using var system = await JobsSystem.StartAsync(postgres, "chaos_jobs", Workers, concurrency: 64);
        system.FailOnViolation = false;
        await WatchOutcomesAsync(system.Db);
        var hosts = BenchmarkLink.Hosts;
        using var callbacks = new CallbackReceiver(hosts?.Gateway);
        var http = system.Http;
        var accepted = new ConcurrentDictionary<Guid, string>();
        var maps = new ConcurrentDictionary<Guid, int>();
        long refused = 0, cancels = 0;
        var refusals = new ConcurrentDictionary<string, int>();
        var faults = new ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var random = new Random(11);
        Console.WriteLine($"chaos: {seconds} s, ~{ratePerSecond} submissions/s of mixed work, {Workers} workers; worker kill -9 every 15–45 s, API kill every ~2 min, PostgreSQL restart every ~4 min" +
                          (hosts is null ? "" : "; a random host partitioned every 30 s for 2–20 s"));

        async Task<Guid?> SubmitAsync(string path, object body, string kind)
        {
            try
            {
                using var response = await http.PostAsJsonAsync(path, body);
                if ((int)response.StatusCode != 202)
                {
                    Interlocked.Increment(ref refused);
                    // A refusal is named by its problem's title: "503 Database unavailable" is a fault's, a 4xx is a bug's.
                    var title = await ProblemTitleAsync(response);
                    refusals.AddOrUpdate($"{(int)response.StatusCode}{(title is null ? "" : $" {title}")}", 1, (_, n) => n + 1);
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
                    10 or 11 => SubmitAsync("/jobs", new { function = "time.sleep", args = new[] { 0.5 }, callbackUrl = callbacks.Url }, "callback"),
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

        var partitions = Task.Run(async () =>
        {
            if (hosts is null) return;
            var names = hosts.Hosts.Select(h => h.Name).ToArray();
            var chance = new Random(26);
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(TimeSpan.FromSeconds(30), stop.Token); }
                catch (OperationCanceledException) { return; }
                var host = hosts[names[chance.Next(names.Length)]];
                var length = TimeSpan.FromSeconds(2 + chance.Next(19));
                host.Cut();
                await Task.Delay(length);
                host.Heal();
                faults.AddOrUpdate($"{host.Name switch { "api" => "API", "db" => "PostgreSQL", _ => "worker" }} host partitioned {(length > TimeSpan.FromSeconds(8) ? "> 8 s" : "≤ 8 s")}", 1, (_, c) => c + 1);
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
        await partitions;

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
        var (secondOutcomes, callbackFigures, callbacksWhole) = await OutcomesAndCallbacksAsync(system.Db, accepted, callbacks);

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
              outcomes:    {secondOutcomes} finished jobs whose outcome was changed after it was written (a second outcome)
              callbacks:   {callbackFigures}
            """);
        return left is (0, 0) && system.Violations == 0 && secondOutcomes == 0 && callbacksWhole ? 0 : 1;
    }

    private static async Task<string?> ProblemTitleAsync(HttpResponseMessage response)
    {
        try { return JsonNode.Parse(await response.Content.ReadAsStringAsync())?["title"]?.GetValue<string>(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { return null; }
    }

    /// <summary>
    /// A trigger (the soak's, in a schema of its own) that records every change to a finished job's state, finish time,
    /// result or error. Nothing the soak does reopens a finished job on purpose (no POST /jobs/{id}/retry, no dashboard
    /// requeue), so each row it records is a second outcome.
    /// </summary>
    private static async Task WatchOutcomesAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand("""
            CREATE SCHEMA IF NOT EXISTS chaos;
            CREATE TABLE IF NOT EXISTS chaos.second_outcome (id uuid, old_state text, new_state text, old_finished timestamptz, new_finished timestamptz, at timestamptz DEFAULT clock_timestamp());
            CREATE OR REPLACE FUNCTION chaos.record_second_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO chaos.second_outcome (id, old_state, new_state, old_finished, new_finished) VALUES (OLD.id, OLD.state, NEW.state, OLD.finished_at, NEW.finished_at);
                RETURN NEW;
            END $$;
            CREATE OR REPLACE TRIGGER second_outcome AFTER UPDATE ON jobs.job FOR EACH ROW
                WHEN (OLD.finished_at IS NOT NULL AND (NEW.state IS DISTINCT FROM OLD.state OR NEW.finished_at IS DISTINCT FROM OLD.finished_at
                      OR NEW.result::text IS DISTINCT FROM OLD.result::text OR NEW.error::text IS DISTINCT FROM OLD.error::text))
                EXECUTE FUNCTION chaos.record_second_outcome();
            """);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Second outcomes recorded, and the callbacks of the finished "callback" jobs: each must arrive (late ones get up to
    /// 60 s); one that arrives twice is counted (a delivery whose answer a fault swallowed is sent again: at least once).
    /// </summary>
    private static async Task<(long SecondOutcomes, string Callbacks, bool Whole)> OutcomesAndCallbacksAsync(NpgsqlDataSource db,
        ConcurrentDictionary<Guid, string> accepted, CallbackReceiver callbacks)
    {
        await using (var rows = db.CreateCommand("SELECT id, old_state, new_state, old_finished, new_finished FROM chaos.second_outcome ORDER BY at"))
        await using (var reader = await rows.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                Console.Error.WriteLine($"SECOND OUTCOME: job {reader.GetGuid(0)} {reader.GetString(1)} at {reader.GetDateTime(3):HH:mm:ss.fff} -> {(reader.IsDBNull(2) ? "?" : reader.GetString(2))} at {(reader.IsDBNull(4) ? "-" : reader.GetDateTime(4).ToString("HH:mm:ss.fff"))}");
        await using var count = db.CreateCommand("SELECT count(DISTINCT id) FROM chaos.second_outcome");
        var second = (long)(await count.ExecuteScalarAsync())!;

        var wanted = accepted.Where(a => a.Value == "callback").Select(a => a.Key).ToArray();
        await using var finished = db.CreateCommand("SELECT id FROM jobs.job WHERE id = ANY($1) AND finished_at IS NOT NULL");
        finished.Parameters.Add(new() { Value = wanted });
        var expected = new List<Guid>();
        await using (var reader = await finished.ExecuteReaderAsync())
            while (await reader.ReadAsync()) expected.Add(reader.GetGuid(0));
        var wait = Stopwatch.StartNew();
        while (expected.Any(id => !callbacks.PerJob.ContainsKey(id)) && wait.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(500);
        var missing = expected.Count(id => !callbacks.PerJob.ContainsKey(id));
        var twice = expected.Count(id => callbacks.PerJob.GetValueOrDefault(id) > 1);
        return (second, $"{expected.Count} finished jobs asked for one: {expected.Count - missing} delivered, {missing} missing, {twice} delivered more than once", missing == 0);
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
