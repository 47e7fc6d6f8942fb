using System.Collections.Concurrent;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// The real system for end-to-end tests: PostgreSQL, the API process on a free loopback port and two worker
/// processes serving the "default" queue, all as separate processes talking over real HTTP and SQL. Tests
/// that need workers of their own start them on a queue of their own (<see cref="StartWorker"/>), so the
/// shared workers never take their jobs.
/// </summary>
/// <remarks>
/// Two of them run side by side, each with its own PostgreSQL cluster, database, API and workers: this one (the
/// <see cref="SystemCollection"/>) and <see cref="FaultSystemFixture"/>. Tests of one fixture run one at a time, since
/// each resets its database; nothing is shared between the two.
/// </remarks>
public class SystemFixture : IAsyncLifetime
{
    private readonly string _cluster;
    private readonly string _databaseSuffix;
    private readonly TimeSpan _dispatchGracePeriod;
    private readonly List<ChildProcess> _processes = [];
    private ChildProcess? _api;

    public const string CallbackSecret = "test-secret-0123456789";
    /// <summary>The one host in Callbacks:AllowedHosts.</summary>
    public const string CallbackHost = "127.0.0.1";

    public TestDatabase Database { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public Uri ApiUrl { get; private set; } = null!;
    public ConcurrentQueue<string> Output { get; } = new();

    // Jobs:DispatchGracePeriod: how long a stored job may wait for the API to hand it to Hangfire before the workers'
    // rescuers dispatch it too (a second Hangfire job for the row, which the design allows). None of this fixture's
    // tests needs the rescuer, and several count Hangfire jobs exactly; 2 s was too short for the API's hand-off on a
    // loaded machine (a test saw 3 Hangfire jobs for one row). The fault fixture's tests wait for the rescuer: 2 s.
    public SystemFixture() : this("test-postgres", "", TimeSpan.FromSeconds(10)) { }

    protected SystemFixture(string cluster, string databaseSuffix, TimeSpan dispatchGracePeriod)
    {
        _cluster = cluster;
        _databaseSuffix = databaseSuffix;
        _dispatchGracePeriod = dispatchGracePeriod;
    }

    public async Task InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync(_cluster, _databaseSuffix);
        ApiUrl = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        Http = new HttpClient { BaseAddress = ApiUrl, Timeout = TimeSpan.FromSeconds(60) };
        _api = Start("api", ProgramPaths.ApiAssembly, new() { ["Api__Urls"] = ApiUrl.ToString().TrimEnd('/') });
        StartWorker("worker-1", ["default"], workerCount: 2);
        StartWorker("worker-2", ["default"], workerCount: 2);
        await Network.WaitForReadyAsync(ApiUrl, () => _api!.HasExited, () => string.Join('\n', Output), TimeSpan.FromSeconds(60));
    }

    /// <summary>A separate worker process serving <paramref name="queues"/>; on <paramref name="host"/> when given (<see cref="TestHosts"/>).</summary>
    public ChildProcess StartWorker(string name, string[] queues, int workerCount = 1, Dictionary<string, string?>? environment = null, NetworkHost? host = null)
    {
        // As root (here and in CI) python3 runs as nobody, which cannot run a pyenv interpreter under /root.
        var env = new Dictionary<string, string?> { ["Python__Executable"] = UserCode.Interpreter };
        foreach (var (key, value) in environment ?? []) env[key] = value;
        env["Worker__WorkerCount"] = workerCount.ToString();
        for (var i = 0; i < queues.Length; i++) env[$"Worker__Queues__{i}"] = queues[i];
        return Start(name, ProgramPaths.WorkerAssembly, env, host);
    }

    /// <summary>A queue name no other test uses, so only the workers a test starts itself serve it.</summary>
    public static string PrivateQueue() => "t_" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Another API process on its own port, e.g. with a different configuration.</summary>
    public ChildProcess StartApi(string name, Uri url, Dictionary<string, string?> environment, NetworkHost? host = null) =>
        Start(name, ProgramPaths.ApiAssembly, new(environment) { ["Api__Urls"] = url.ToString().TrimEnd('/') }, host);

    /// <summary><see cref="StartApi"/>, then waits until it is ready (its /health/ready answers).</summary>
    public async Task<ChildProcess> StartReadyApiAsync(string name, Uri url, Dictionary<string, string?> environment, NetworkHost? host = null)
    {
        var api = StartApi(name, url, environment, host);
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => string.Join('\n', Output.TakeLast(30)), TimeSpan.FromSeconds(60));
        return api;
    }

    private ChildProcess Start(string name, string assembly, Dictionary<string, string?> extra, NetworkHost? host = null)
    {
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = Database.ConnectionString,
            ["Jobs__EnableDebugCrash"] = "true",
            ["Jobs__DispatchGracePeriod"] = _dispatchGracePeriod.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
            ["Jobs__RetryBaseDelay"] = "00:00:00.200",
            ["Callbacks__AllowedHosts__0"] = CallbackHost + ":*", // the receivers listen on free ports
            ["Jobs__Queues__0"] = "t_*", // PrivateQueue()'s: tests queue work no worker serves yet
            ["Callbacks__Secret"] = CallbackSecret,
            // The fuzz test sends thousands of requests a second from one address; the limiter has its own test.
            ["Api__RateLimitPerSecond"] = "1000000",
            ["Api__RateLimitBurst"] = "1000000",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };
        foreach (var (k, v) in extra) env[k] = v;
        var process = ChildProcess.Start(name, assembly, env, line =>
        {
            // JOBS_TEST_LOG=/path: every child process's output, time-stamped, for diagnosing a failed run; the second
            // fixture's lines are marked, since both have an [api], a [worker-1] and a [worker-2].
            if (Environment.GetEnvironmentVariable("JOBS_TEST_LOG") is { Length: > 0 } log)
                File.AppendAllText(log, $"{DateTime.UtcNow:HH:mm:ss.fff} {(_databaseSuffix.Length > 0 ? $"({_databaseSuffix.TrimStart('_')}) " : "")}{line}\n");
            Output.Enqueue(line);
            while (Output.Count > 5000) Output.TryDequeue(out _);
        }, launch: host?.Launch);
        lock (_processes) _processes.Add(process);
        return process;
    }

    public async Task DisposeAsync()
    {
        List<ChildProcess> all;
        lock (_processes) all = [.. _processes];
        await Task.WhenAll(all.Select(p => p.StopAsync(TimeSpan.FromSeconds(10))));
        foreach (var p in all) await p.DisposeAsync();
        Http.Dispose();
        await Database.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class SystemCollection : ICollectionFixture<SystemFixture>
{
    public const string Name = "system";
}

/// <summary>
/// A second system, for the tests that break things — stop PostgreSQL (its own cluster, so no other fixture's
/// tests lose their database), kill and stop workers — and mostly wait on timeouts meanwhile: they run beside the
/// <see cref="SystemCollection"/>'s tests instead of after them.
/// </summary>
public sealed class FaultSystemFixture() : SystemFixture("test-postgres-faults", "_faults", TimeSpan.FromSeconds(2));

[CollectionDefinition(Name)]
public sealed class FaultSystemCollection : ICollectionFixture<FaultSystemFixture>
{
    public const string Name = "fault-system";
}
