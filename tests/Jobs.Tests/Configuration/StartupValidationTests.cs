using System.Collections.Concurrent;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Configuration;

/// <summary>A bad configuration stops a process at start with a message naming the key, instead of failing later.</summary>
[Collection(SystemCollection.Name)]
public sealed class StartupValidationTests(SystemFixture system)
{
    [Theory]
    [InlineData("worker", "Worker__Queues__0", "Not A Queue", "Worker:Queues")]
    [InlineData("worker", "Worker__WorkerCount", "-3", "WorkerCount")]
    [InlineData("worker", "Jobs__Retention", "00:00:01", "Retention")]
    [InlineData("api", "Api__MaxRequestBodyBytes", "12", "MaxRequestBodyBytes")]
    [InlineData("api", "ConnectionStrings__Jobs", "", "ConnectionStrings:Jobs is not set")]
    // Python code never gets the service's own configuration, even when asked (it holds the database password, keys).
    [InlineData("worker", "Python__PassEnvironment__0", "ConnectionStrings__Jobs", "Python:PassEnvironment: ConnectionStrings__Jobs")]
    [InlineData("worker", "Python__PassEnvironment__0", "Callbacks__Secret", "Python:PassEnvironment: Callbacks__Secret")]
    // A module is checked at start, not at its first call.
    [InlineData("worker", "Python__Modules__0__Path", "no/such/module.py", "Python:Modules:0:Path")]
    [InlineData("worker", "Python__Modules__0__InitArgs", "[1", "Python:Modules:0:InitArgs")]
    public async Task Invalid_setting_stops_the_process_at_start_naming_the_key(string program, string key, string value, string expected)
    {
        var output = new ConcurrentQueue<string>();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = system.Database.ConnectionString,
            ["Api__Urls"] = $"http://127.0.0.1:{Network.FreePort()}",
            [key] = value,
        };
        await using var process = ChildProcess.Start(program, program == "api" ? ProgramPaths.ApiAssembly : ProgramPaths.WorkerAssembly, env, output.Enqueue);

        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains(expected, string.Join('\n', output));
    }

    [Theory]
    [InlineData("Worker__Queues__0", "Not A Queue")]
    [InlineData("Worker__WorkerCount", "-3")]
    [InlineData("Python__Modules__0__Path", "no/such/module.py")]
    public async Task A_worker_only_setting_does_not_stop_the_api(string key, string value)
    {
        // Each process validates its own options (issue 25): a worker's bad setting is the worker's to refuse.
        var output = new ConcurrentQueue<string>();
        var port = Network.FreePort();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = system.Database.ConnectionString,
            ["Api__Urls"] = $"http://127.0.0.1:{port}",
            [key] = value,
        };
        await using var process = ChildProcess.Start("api", ProgramPaths.ApiAssembly, env, output.Enqueue);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await Eventually.TrueAsync(async () =>
        {
            Assert.False(process.HasExited, $"the API stopped: {string.Join('\n', output)}");
            try { return (await http.GetAsync("/health/live")).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, "the API serves /health/live", 30);
    }
}
