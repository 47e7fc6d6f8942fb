using Microsoft.Extensions.Configuration;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;

namespace Jobs.Launcher;

/// <summary>The running service: PostgreSQL (when private), the API and the workers, supervised.</summary>
public sealed class Service : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    private readonly LocalPostgres? _postgres;
    private readonly Dictionary<string, string?> _environment;
    private readonly List<ChildProcess> _children = [];
    private readonly string _apiUrl;

    private Service(LocalPostgres? postgres, Dictionary<string, string?> environment, string apiUrl)
    {
        _postgres = postgres;
        _environment = environment;
        _apiUrl = apiUrl;
    }

    public static async Task<Service> StartAsync(IConfiguration configuration, CancellationToken ct)
    {
        var launcher = JobsConfiguration.Validate(configuration.GetSection(LauncherOptions.Section).Get<LauncherOptions>() ?? new(), LauncherOptions.Section);
        var api = JobsConfiguration.Validate(configuration.GetSection(ApiOptions.Section).Get<ApiOptions>() ?? new(), ApiOptions.Section);

        LocalPostgres? postgres = null;
        var connectionString = configuration.GetConnectionString(JobsConfiguration.ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var dataDirectory = Path.Combine(ProgramPaths.RepositoryRoot, launcher.DataDirectory);
            postgres = await LocalPostgres.StartAsync(dataDirectory, Log, launcher.PostgresPort, ct);
            await postgres.EnsureDatabaseAsync("jobs", ct: ct);
            connectionString = postgres.ConnectionString("jobs");
        }

        var service = new Service(postgres, new() { ["ConnectionStrings__Jobs"] = connectionString }, api.Urls.Split(';')[0].TrimEnd('/'));
        try
        {
            Log("migrate: applying migrations/ and Hangfire's schema");
            await Migrator.MigrateAsync(connectionString, m => Log($"migrate: {m}"), ct);

            service._children.Add(ChildProcess.Start("api", ProgramPaths.ApiAssembly, service._environment));
            for (var i = 1; i <= launcher.Workers; i++)
                service._children.Add(ChildProcess.Start($"worker-{i}", ProgramPaths.WorkerAssembly, service._environment));
            await Network.WaitForReadyAsync(new Uri(service._apiUrl + "/"), () => service._children.Any(c => c.HasExited),
                () => "See its output above.", TimeSpan.FromSeconds(60), ct);
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
        Log($$"""

            Jobs is running: {{launcher.Workers}} worker process(es), API at {{service._apiUrl}}
              Swagger UI  {{service._apiUrl}}/swagger
              Dashboard   {{service._apiUrl}}/hangfire
              Try         curl -s -X POST {{service._apiUrl}}/jobs?wait=5 -H 'Content-Type: application/json' -d '{"function":"math.square","args":[7]}'
            Ctrl+C stops everything.

            """);
        return service;
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
                _children[i] = ChildProcess.Start(child.Name,
                    child.Name == "api" ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, _environment);
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
