using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Microsoft.Extensions.Configuration;

namespace Jobs.Launcher;

/// <summary>The running service: PostgreSQL (when private), the API and the workers, supervised.</summary>
public sealed class Service : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    private readonly LocalPostgres? _postgres;
    private readonly Dictionary<string, string?> _environment;
    private readonly List<ChildProcess> _children = [];
    /// <summary>Each child's own environment beside <see cref="_environment"/> (a worker's metrics port), kept for its restarts.</summary>
    private readonly Dictionary<string, Dictionary<string, string?>> _own = [];

    private Service(LocalPostgres? postgres, Dictionary<string, string?> environment)
    {
        _postgres = postgres;
        _environment = environment;
    }

    public static async Task<Service> StartAsync(IConfiguration configuration, CancellationToken ct)
    {
        var launcher = configuration.Read<LauncherOptions>(LauncherOptions.Section);
        var api = configuration.Read<ApiOptions>(ApiOptions.Section);
        var auth = configuration.Read<AuthOptions>(AuthOptions.Section);
        var address = ApiAddress.Parse(api.Urls, auth.Enabled);
        address.EnsurePortFree();

        LocalPostgres? postgres = null;
        var connectionString = configuration.GetConnectionString(JobsConfiguration.ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var dataDirectory = Path.Combine(ProgramPaths.RepositoryRoot, launcher.DataDirectory);
            postgres = await LocalPostgres.StartAsync(dataDirectory, Log, launcher.PostgresPort, ct);
            await postgres.EnsureDatabaseAsync("jobs", ct: ct);
            connectionString = postgres.ConnectionString("jobs");
        }

        var service = new Service(postgres, new() { ["ConnectionStrings__Jobs"] = connectionString });
        // Python modules named relative to where the launcher was started (`Python__Modules__0__Path=intro.py`): the
        // workers run in their own folder, so they get the full path.
        foreach (var module in configuration.GetSection("Python:Modules").GetChildren())
        {
            if (module["Path"] is { Length: > 0 } path && !Path.IsPathRooted(path) && File.Exists(path))
            {
                service._environment[$"Python__Modules__{module.Key}__Path"] = Path.GetFullPath(path);
                Log($"python: the workers load {Path.GetFullPath(path)}");
            }
        }
        try
        {
            Log("migrate: applying migrations/ and Hangfire's schema");
            await Migrator.MigrateAsync(connectionString, m => Log($"migrate: {m}"), ct);

            service._children.Add(service.Start("api"));
            var worker = configuration.Read<WorkerOptions>(WorkerOptions.Section);
            for (var i = 1; i <= launcher.Workers; i++)
            {
                var name = $"worker-{i}";
                if (worker.MetricsPort > 0)
                {
                    // One listener per process: worker N serves its metrics on Worker:MetricsPort + N - 1 (the same
                    // port for all crashed worker-2 with "Address already in use" and stopped the service).
                    var port = worker.MetricsPort + i - 1;
                    if (port > 65535) throw new InvalidOperationException($"Worker:MetricsPort {worker.MetricsPort} leaves no port for {name} ({port} > 65535)");
                    service._own[name] = new() { ["Worker__MetricsPort"] = $"{port}" };
                    Log($"{name}: metrics at http://{MetricsHost(worker.MetricsHost)}:{port}/metrics");
                }
                service._children.Add(service.Start(name));
            }
            await Network.WaitForReadyAsync(address.Local, () => service._children.Any(c => c.HasExited), service.Explain, TimeSpan.FromSeconds(60), ct);
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
        var url = address.LocalUrl;
        Log($$"""

            Jobs is running: {{launcher.Workers}} worker process(es), API at {{url}}{{Reach(address)}}
              Swagger UI  {{url}}/swagger
              Dashboard   {{url}}/hangfire
              Try         curl -s -X POST {{url}}/jobs?wait=5 -H 'Content-Type: application/json'{{(auth.Enabled ? " -H 'Authorization: Bearer <key>'" : "")}} -d '{"function":"math.square","args":[7]}'
            Ctrl+C stops everything.

            """);
        return service;
    }

    private ChildProcess Start(string name)
    {
        var environment = new Dictionary<string, string?>(_environment);
        foreach (var (key, value) in _own.GetValueOrDefault(name) ?? []) environment[key] = value;
        return ChildProcess.Start(name, name == "api" ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, environment);
    }

    /// <summary>The host to scrape a worker's metrics at, given what its listener binds.</summary>
    private static string MetricsHost(string host) => host is "*" or "+" or "0.0.0.0" ? "127.0.0.1" : host.Contains(':') ? $"[{host}]" : host;

    /// <summary>Why start-up failed, as far as the children tell: which exited, with what code.</summary>
    private string Explain()
    {
        var exited = _children.Where(c => c.HasExited).Select(c => $"{c.Name} exited with code {c.ExitCode}").ToList();
        return exited.Count == 0 ? "See the output above." : $"{string.Join("; ", exited)}: see its output above.";
    }

    /// <summary>Who else can reach the API, when that is not just the URL printed.</summary>
    private static string Reach(ApiAddress address)
    {
        if (address.AllInterfaces)
        {
            var port = address.Local.IsDefaultPort ? "" : $":{address.Local.Port}";
            return $"\n  listening on all interfaces ({address.Listen}): from another machine use this one's name or address, " +
                   $"e.g. {address.Local.Scheme}://{System.Net.Dns.GetHostName()}{port}";
        }
        return address.Listen.Contains(address.Local.Host, StringComparison.OrdinalIgnoreCase) ? ""
            : $"\n  loopback only: without API keys (Auth:ApiKeys) the API does not listen on {address.Listen}";
    }

    /// <summary>Restarts a worker that dies (a job that kills its process must not take capacity with it); stops on cancel.</summary>
    public async Task RunUntilStoppedAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            for (var i = 0; i < _children.Count && !ct.IsCancellationRequested; i++)
            {
                var child = _children[i];
                if (!child.HasExited) continue;
                Log($"{child.Name} exited with code {child.ExitCode}; starting it again");
                await child.DisposeAsync();
                _children[i] = Start(child.Name);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Log("stopping: workers finish their running jobs (Worker:ShutdownTimeout), then the API and PostgreSQL stop");
        await Task.WhenAll(_children.Select(c => c.StopAsync(StopGrace)));
        foreach (var child in _children) await child.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }

    private static void Log(string message) => Console.WriteLine($"[jobs] {message}");
}
