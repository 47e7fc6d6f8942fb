using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Launcher;

/// <summary>The README's main command: private PostgreSQL, migrate, API and workers, clean stop on SIGTERM.</summary>
[Collection(SystemCollection.Name)]
public sealed class LauncherTests
{
    [Fact]
    public async Task Launcher_starts_postgres_api_and_workers_and_stops_them_all_on_sigterm()
    {
        var dataDirectory = Path.Combine(ProgramPaths.RepositoryRoot, ".data", "launcher-test-postgres");
        var api = $"http://127.0.0.1:{Network.FreePort()}";
        var output = new ConcurrentQueue<string>();
        var launcher = ChildProcess.Start("launcher", ProgramPaths.LauncherAssembly, new Dictionary<string, string?>
        {
            ["Launcher__DataDirectory"] = dataDirectory,
            ["Launcher__Workers"] = "2",
            ["Api__Urls"] = api,
            ["ConnectionStrings__Jobs"] = "",
        }, output.Enqueue);
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(output.Any(l => l.Contains("Jobs is running")) || launcher.HasExited),
                "the launcher reports it is running", 120);
            Assert.False(launcher.HasExited, string.Join('\n', output));
            var log = string.Join('\n', output);
            Assert.Contains($"{api}/swagger", log);
            Assert.Contains($"{api}/hangfire", log);
            Assert.Contains("[worker-2]", log);

            using var http = new HttpClient { BaseAddress = new Uri(api) };
            var response = await http.PostAsJsonAsync("/jobs?wait=30", new { function = "math.square", args = new[] { 11 } });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(121, (await response.JsonAsync())["result"]!.GetValue<double>());

            Posix.Terminate(launcher.Id);
            await launcher.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
            Assert.Equal(0, launcher.ExitCode);
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync("/health/live"));
            Assert.False(File.Exists(Path.Combine(dataDirectory, "postmaster.pid")), "PostgreSQL should be stopped");
        }
        finally
        {
            await launcher.DisposeAsync();
        }
    }
}
