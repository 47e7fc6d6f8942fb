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

    private readonly List<Dictionary<string, string?>> _environments = [];

    private JobsSystem(List<ChildProcess> processes, HttpClient http, NpgsqlDataSource db) => (_processes, Http, Db) = (processes, http, db);

    /// <summary>kill -9 of process <paramref name="index"/> (0 is the API), then a fresh one in its place after <paramref name="downtime"/>.</summary>
    public async Task KillAndRestartAsync(int index, TimeSpan downtime)
    {
        var victim = _processes[index];
        victim.Kill();
        await victim.DisposeAsync();
        await Task.Delay(downtime);
        _processes[index] = Start(victim.Name, index == 0 ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, _environments[index]);
    }

    /// <summary>On its own host with --hosts (<see cref="BenchmarkLink.Hosts"/>, named as the process), else here.</summary>
    private static ChildProcess Start(string name, string assembly, Dictionary<string, string?> environment) =>
        ChildProcess.Start(name, assembly, environment, JobsScenario.Quiet, launch: BenchmarkLink.Hosts?[name].Launch);

    /// <summary>The key the API requires with --hosts (an API reachable from other hosts requires one).</summary>
    private static readonly string HostsKey = "bench-" + Guid.NewGuid().ToString("N");


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
        var hosts = BenchmarkLink.Hosts;
        var api = $"http://{(hosts is null ? "127.0.0.1" : hosts["api"].Address)}:{Network.FreePort()}";
        Dictionary<string, string?> Environment(string name)
        {
            var env = new Dictionary<string, string?>
            {
                ["ConnectionStrings__Jobs"] = BenchmarkLink.Through(cs, name),
                ["Api__Urls"] = api,
                ["Logging__LogLevel__Default"] = "Warning",
                // The Python scenario's module (Python:Modules), as users point their workers at their own.
                ["Python__Modules__0__Path"] = PythonExamples,
            };
            if (hosts is not null)
            {
                env["Auth__ApiKeys__0__Name"] = "benchmark";
                env["Auth__ApiKeys__0__Sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(HostsKey)));
                env["Auth__ApiKeys__0__Role"] = "admin";
            }
            foreach (var (key, value) in BenchmarkLink.Clock(name)) env[key] = value;
            // The chaos soak's callbacks go to its receiver (Jobs.Launcher.Processes.CallbackReceiver), on the hosts' gateway or here.
            env["Callbacks__AllowedHosts__0"] = $"{hosts?.Gateway.ToString() ?? "127.0.0.1"}:*";
            env["Callbacks__Secret"] = "benchmark-callback-secret";
            return env;
        }
        var names = new[] { "api" }.Concat(Enumerable.Range(1, workers).Select(i => $"worker-{i}")).ToArray();
        var environments = names.Select(Environment).ToList();
        var processes = names.Select((name, i) => Start(name, i == 0 ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, environments[i])).ToList();
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(300) };
        if (hosts is not null) http.DefaultRequestHeaders.Authorization = new("Bearer", HostsKey);
        await Network.WaitForReadyAsync(http.BaseAddress, () => processes.Any(p => p.HasExited), () => "", TimeSpan.FromSeconds(60));
        // Wait until every worker server has registered, so the measurement starts with all of them.
        await using var db = NpgsqlDataSource.Create(cs);
        await using (var servers = db.CreateCommand("SELECT count(*) FROM hangfire.server"))
            while ((long)(await servers.ExecuteScalarAsync())! < workers) await Task.Delay(100);
        var system = Shutdown.Register(new JobsSystem(processes, http, NpgsqlDataSource.Create(cs)) { PostgresDataDirectory = postgres.DataDirectory });
        system._environments.AddRange(environments);
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
