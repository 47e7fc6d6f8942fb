using Jobs.Core.Database;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Benchmark;

/// <summary>Jobs itself, as users run it: the API process and separate worker processes, driven over REST.</summary>
public sealed class JobsSystem : IAsyncDisposable
{
    private readonly List<ChildProcess> _processes;
    public IReadOnlyList<ChildProcess> Processes => _processes;
    public HttpClient Http { get; }
    public NpgsqlDataSource Db { get; }

    /// <summary>The private cluster's data directory: the CPU census tells its processes from other clusters' on the machine.</summary>
    public string PostgresDataDirectory { get; private init; } = "";

    private readonly CancellationTokenSource _stop = new();
    private Task _watch = Task.CompletedTask;

    private Dictionary<string, string?> _environment = [];

    private JobsSystem(List<ChildProcess> processes, HttpClient http, NpgsqlDataSource db) => (_processes, Http, Db) = (processes, http, db);

    /// <summary>kill -9 of process <paramref name="index"/> (0 is the API), then a fresh one in its place after <paramref name="downtime"/>.</summary>
    public async Task KillAndRestartAsync(int index, TimeSpan downtime)
    {
        var victim = _processes[index];
        victim.Kill();
        await victim.DisposeAsync();
        await Task.Delay(downtime);
        _processes[index] = ChildProcess.Start(victim.Name, index == 0 ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, _environment, JobsScenario.Quiet);
    }

    /// <summary>A job on no path to an end (see Jobs.Core.Queue.Maintenance.Invariants) for this long fails the run.</summary>
    public static readonly TimeSpan StuckAfter = TimeSpan.FromSeconds(30);

    /// <summary>Jobs and chunks the watch has seen break the invariant (each once, however long); the soak reports them, the scenarios fail on the first.</summary>
    public int Violations => _violators.Count;

    private readonly HashSet<string> _violators = [];

    /// <summary>When false (the soak), violations are counted and printed, and the run goes on.</summary>
    public bool FailOnViolation { get; set; } = true;

    /// <summary>
    /// Every 5 s, the workers' own invariant check from outside: a job that breaks it for longer than
    /// <see cref="StuckAfter"/> is printed with its rows and fails the run, instead of a scenario waiting for ever.
    /// </summary>
    private async Task WatchAsync()
    {
        var invariants = new Jobs.Core.Queue.Maintenance.Invariants(Db);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(5), _stop.Token);
                var violations = await invariants.CheckAsync(StuckAfter, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(40), _stop.Token);
                foreach (var v in violations)
                    if (_violators.Add($"{v.Kind} {v.Id}")) Console.Error.WriteLine($"STUCK: {v}");
                if (violations.Count > 0 && FailOnViolation)
                    await Shutdown.FailAsync($"{violations.Count} job(s) on no path to an end for over {StuckAfter.TotalSeconds:0} s (rows above)");
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // PostgreSQL restarting (the soak does that on purpose): look again next round.
            }
        }
    }

    public static string PythonExamples => Path.Combine(ProgramPaths.RepositoryRoot, "src", "python", "examples", "pool_examples.py");

    public static async Task<JobsSystem> StartAsync(LocalPostgres postgres, string database, int workers, int concurrency)
    {
        await postgres.EnsureDatabaseAsync(database, recreate: true);
        var cs = postgres.ConnectionString(database);
        await Migrator.MigrateAsync(cs);
        var api = $"http://127.0.0.1:{Network.FreePort()}";
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = BenchmarkLink.Through(cs),
            ["Api__Urls"] = api,
            ["Logging__LogLevel__Default"] = "Warning",
            // The Python scenario's module (Python:Modules), as users point their workers at their own.
            ["Python__Modules__0__Path"] = PythonExamples,
        };
        var processes = new List<ChildProcess> { ChildProcess.Start("api", ProgramPaths.ApiAssembly, env, JobsScenario.Quiet) };
        for (var i = 1; i <= workers; i++) processes.Add(ChildProcess.Start($"worker-{i}", ProgramPaths.WorkerAssembly, env, JobsScenario.Quiet));
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(300) };
        await Network.WaitForReadyAsync(http.BaseAddress, () => processes.Any(p => p.HasExited), () => "", TimeSpan.FromSeconds(60));
        // Wait until every worker server has registered, so the measurement starts with all of them.
        await using var db = NpgsqlDataSource.Create(cs);
        await using (var servers = db.CreateCommand("SELECT count(*) FROM hangfire.server"))
            while ((long)(await servers.ExecuteScalarAsync())! < workers) await Task.Delay(100);
        var system = Shutdown.Register(new JobsSystem(processes, http, NpgsqlDataSource.Create(cs)) { _environment = env, PostgresDataDirectory = postgres.DataDirectory });
        system._watch = system.WatchAsync();
        return system;
    }

    public async ValueTask DisposeAsync()
    {
        Shutdown.Unregister(this);
        _stop.Cancel();
        await _watch;
        await Task.WhenAll(_processes.Select(p => p.StopAsync(TimeSpan.FromSeconds(20))));
        foreach (var p in _processes) await p.DisposeAsync();
        Http.Dispose();
        await Db.DisposeAsync();
    }
}
