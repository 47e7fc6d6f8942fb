using System.Diagnostics;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>The job the baseline runs: a static no-op, as in Hangfire's own samples.</summary>
public static class BaselineJobs
{
    public static void Noop() { }
}

/// <summary>
/// The baseline: what people wire up by hand — Hangfire.PostgreSql with every option at its default, the same
/// number of separate server processes, jobs enqueued with BackgroundJobClient directly (no HTTP hop, which
/// flatters the baseline's submission rate).
/// </summary>
public static class BaselineScenario
{
    public const string WorkerMode = "baseline-worker";

    /// <summary>
    /// Concurrent enqueuers for the baseline: with 64, bare Hangfire.PostgreSql's client times out (30 s command
    /// timeout) on this machine, so it gets the 16 it manages.
    /// </summary>
    public const int MaxConcurrency = 16;

    public static async Task<Figures> RunAsync(LocalPostgres postgres, BenchmarkOptions options)
    {
        var concurrency = Math.Min(options.Concurrency, MaxConcurrency);
        await postgres.EnsureDatabaseAsync("bench_baseline", recreate: true);
        var cs = postgres.ConnectionString("bench_baseline");
        await using (var connection = new NpgsqlConnection(cs))
        {
            await connection.OpenAsync();
            PostgreSqlObjectsInstaller.Install(connection, "hangfire"); // once, before several servers race to do it
        }
        var self = typeof(BaselineScenario).Assembly.Location;
        var processes = Enumerable.Range(1, options.Workers)
            .Select(i => ChildProcess.Start($"baseline-{i}", self, new Dictionary<string, string?> { ["BASELINE_CONNECTION"] = cs, ["DOTNET_TieredCompilation"] = "1" }, JobsScenario.Quiet, [WorkerMode]))
            .ToList();
        try
        {
            var storageOptions = new PostgreSqlStorageOptions();
            var client = new BackgroundJobClient(new PostgreSqlStorage(new NpgsqlConnectionFactory(cs, storageOptions), storageOptions));
            await using var db = NpgsqlDataSource.Create(cs);
            await WaitForServersAsync(db, options.Workers);

            // Warm-up; with the default 15 s poll this also waits for the servers' first fetch.
            await EnqueueManyAsync(client, 50, concurrency);
            await WaitForSucceededAsync(db, 50);

            Console.Error.WriteLine($"baseline: {options.Jobs} no-op jobs through BackgroundJobClient…");
            await SqlCost.ResetAsync(db);
            var clock = Stopwatch.StartNew();
            await EnqueueManyAsync(client, options.Jobs, concurrency);
            var submitted = clock.Elapsed;
            await WaitForSucceededAsync(db, 50 + options.Jobs);
            var done = clock.Elapsed;
            var sql = await SqlCost.MeasureAsync(db, options.Jobs);

            Console.Error.WriteLine($"baseline: {options.BaselineLatencySamples} sequential submissions (each waits for the 15 s poll)…");
            var pickup = new List<double>();
            var roundTrip = new List<double>();
            await using var stateOf = db.CreateCommand("SELECT statename FROM hangfire.job WHERE id = $1");
            await using var latency = db.CreateCommand("""
                SELECT extract(epoch FROM s.createdat - j.createdat) * 1000 FROM hangfire.job j
                JOIN hangfire.state s ON s.jobid = j.id AND s.name = 'Processing' WHERE j.id = $1
                """);
            for (var i = 0; i < options.BaselineLatencySamples; i++)
            {
                var sample = Stopwatch.StartNew();
                var id = long.Parse(client.Enqueue(() => BaselineJobs.Noop()));
                stateOf.Parameters.Clear();
                stateOf.Parameters.Add(new() { Value = id });
                while ((string?)await stateOf.ExecuteScalarAsync() != "Succeeded") await Task.Delay(5);
                roundTrip.Add(sample.Elapsed.TotalMilliseconds);
                latency.Parameters.Clear();
                latency.Parameters.Add(new() { Value = id });
                pickup.Add(Convert.ToDouble(await latency.ExecuteScalarAsync()));
            }
            return new Figures(options.Jobs / done.TotalSeconds, options.Jobs / submitted.TotalSeconds,
                Percentiles.Of(pickup), Percentiles.Of(roundTrip), sql);
        }
        finally
        {
            await Task.WhenAll(processes.Select(p => p.StopAsync(TimeSpan.FromSeconds(20))));
            foreach (var p in processes) await p.DisposeAsync();
        }
    }

    /// <summary>The baseline's server process: <c>new BackgroundJobServer()</c> with defaults until SIGTERM.</summary>
    public static int RunWorker()
    {
        var cs = Environment.GetEnvironmentVariable("BASELINE_CONNECTION") ?? throw new InvalidOperationException("BASELINE_CONNECTION is not set");
        var storageOptions = new PostgreSqlStorageOptions();
        var storage = new PostgreSqlStorage(new NpgsqlConnectionFactory(cs, storageOptions), storageOptions);
        using var stop = new ManualResetEventSlim();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
        using (new BackgroundJobServer(new BackgroundJobServerOptions(), storage))
            stop.Wait();
        return 0;
    }

    private static async Task EnqueueManyAsync(BackgroundJobClient client, int count, int concurrency) =>
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency },
            (_, _) => { client.Enqueue(() => BaselineJobs.Noop()); return ValueTask.CompletedTask; });

    private static async Task WaitForSucceededAsync(NpgsqlDataSource db, int count)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'");
        while ((long)(await cmd.ExecuteScalarAsync())! < count) await Task.Delay(20);
    }

    private static async Task WaitForServersAsync(NpgsqlDataSource db, int count)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM hangfire.server");
        while ((long)(await cmd.ExecuteScalarAsync())! < count) await Task.Delay(100);
    }
}
