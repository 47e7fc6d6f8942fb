using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Core.Database;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>Jobs itself, as users run it: the API process and separate worker processes, driven over REST.</summary>
public static class JobsScenario
{
    public static async Task<Figures> RunAsync(LocalPostgres postgres, BenchmarkOptions options)
    {
        await postgres.EnsureDatabaseAsync("bench_jobs", recreate: true);
        var cs = postgres.ConnectionString("bench_jobs");
        await Migrator.MigrateAsync(cs);
        var api = $"http://127.0.0.1:{Network.FreePort()}";
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = cs,
            ["Api__Urls"] = api,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var processes = new List<ChildProcess> { ChildProcess.Start("api", ProgramPaths.ApiAssembly, env, Quiet) };
        for (var i = 1; i <= options.Workers; i++) processes.Add(ChildProcess.Start($"worker-{i}", ProgramPaths.WorkerAssembly, env, Quiet));
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency })
                { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(120) };
            await Network.WaitForReadyAsync(http.BaseAddress!, () => processes.Any(p => p.HasExited), () => "", TimeSpan.FromSeconds(60));
            await using var db = NpgsqlDataSource.Create(cs);

            // Warm-up: JIT, connection pools, Hangfire's first fetch.
            await SubmitManyAsync(http, 200, options.Concurrency);
            await WaitForSucceededAsync(db, 200);

            Console.Error.WriteLine($"jobs: {options.Jobs} no-op jobs through REST ({options.Concurrency} concurrent clients)…");
            var clock = Stopwatch.StartNew();
            await SubmitManyAsync(http, options.Jobs, options.Concurrency);
            var submitted = clock.Elapsed;
            await WaitForSucceededAsync(db, 200 + options.Jobs);
            var done = clock.Elapsed;

            Console.Error.WriteLine($"jobs: {options.LatencySamples} sequential submissions on an idle system…");
            var pickup = new List<double>();
            var roundTrip = new List<double>();
            for (var i = 0; i < options.LatencySamples; i++)
            {
                var sample = Stopwatch.StartNew();
                var response = await http.PostAsJsonAsync("/jobs?wait=30", new { function = "noop" });
                var job = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                roundTrip.Add(sample.Elapsed.TotalMilliseconds);
                pickup.Add((job["startedAt"]!.GetValue<DateTime>() - job["createdAt"]!.GetValue<DateTime>()).TotalMilliseconds);
            }
            return new Figures(options.Jobs / done.TotalSeconds, options.Jobs / submitted.TotalSeconds,
                Percentiles.Of(pickup), Percentiles.Of(roundTrip));
        }
        finally
        {
            await Task.WhenAll(processes.Select(p => p.StopAsync(TimeSpan.FromSeconds(20))));
            foreach (var p in processes) await p.DisposeAsync();
        }
    }

    private static async Task SubmitManyAsync(HttpClient http, int count, int concurrency) =>
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (_, ct) =>
        {
            using var response = await http.PostAsJsonAsync("/jobs", new { function = "noop" }, ct);
            if ((int)response.StatusCode != 202)
                throw new InvalidOperationException($"submission refused: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        });

    private static async Task WaitForSucceededAsync(NpgsqlDataSource db, int count)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM jobs.job WHERE state = 'succeeded'");
        while ((long)(await cmd.ExecuteScalarAsync())! < count) await Task.Delay(20);
    }

    internal static void Quiet(string line)
    {
        if (line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal)) Console.Error.WriteLine(line);
    }
}
