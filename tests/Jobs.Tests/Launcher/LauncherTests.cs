using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Launcher;

/// <summary>The README's main command: private PostgreSQL, migrate, API and workers, clean stop on SIGTERM.</summary>
/// <remarks>
/// A collection of its own, beside the system fixtures: the launcher brings its own PostgreSQL cluster
/// (.data/launcher-test-postgres), API and workers on free ports, and uses nothing of theirs.
/// </remarks>
public sealed class LauncherTests
{
    private const string Key = "launcher-test-key-0123456789";

    private static string DataDirectory => Path.Combine(ProgramPaths.RepositoryRoot, ".data", "launcher-test-postgres");

    /// <summary>The launcher with one worker and an API key (without keys the API listens on loopback only, whatever Api:Urls says).</summary>
    private static ChildProcess StartWithKeys(string apiUrls, ConcurrentQueue<string> output, ConcurrentQueue<string> errors) =>
        ChildProcess.Start("launcher", ProgramPaths.LauncherAssembly, new Dictionary<string, string?>
        {
            ["Launcher__DataDirectory"] = DataDirectory,
            ["Launcher__Workers"] = "1",
            ["Api__Urls"] = apiUrls,
            ["ConnectionStrings__Jobs"] = "",
            ["Auth__ApiKeys__0__Name"] = "admin",
            ["Auth__ApiKeys__0__Sha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Key))),
            ["Auth__ApiKeys__0__Role"] = "admin",
        }, output.Enqueue, errors: errors.Enqueue);

    [Fact]
    public async Task Launcher_starts_postgres_api_and_workers_and_stops_them_all_on_sigterm()
    {
        var dataDirectory = DataDirectory;
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

    [Fact]
    public async Task Launcher_serving_all_interfaces_gets_ready_through_loopback_and_prints_a_usable_url()
    {
        var port = Network.FreePort();
        var output = new ConcurrentQueue<string>();
        var errors = new ConcurrentQueue<string>();
        var launcher = StartWithKeys($"http://0.0.0.0:{port}", output, errors);
        try
        {
            // .NET refuses to send a request to 0.0.0.0: a launcher polling it would wait for its 60 s, then fail.
            await Eventually.TrueAsync(() => Task.FromResult(output.Any(l => l.Contains("Jobs is running")) || launcher.HasExited),
                "the launcher reports it is running", 90);
            Assert.False(launcher.HasExited, string.Join('\n', output.Concat(errors)));
            var log = string.Join('\n', output);
            Assert.Contains($"http://127.0.0.1:{port}/swagger", log);
            Assert.Contains("all interfaces", log);
            Assert.DoesNotContain($"http://0.0.0.0:{port}/swagger", log);

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/functions")).StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Get, "/functions") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Key) } };
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request)).StatusCode);

            Posix.Terminate(launcher.Id);
            await launcher.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
            Assert.Equal(0, launcher.ExitCode);
            Assert.Empty(errors);
        }
        finally
        {
            await launcher.DisposeAsync();
        }
    }

    [Fact]
    public async Task Launcher_start_up_failure_is_one_line_on_stderr_and_a_nonzero_exit()
    {
        // The API's port is taken by a listener this test holds.
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;
        var output = new ConcurrentQueue<string>();
        var errors = new ConcurrentQueue<string>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var launcher = StartWithKeys($"http://0.0.0.0:{port}", output, errors);
        try
        {
            await launcher.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(45)).Token);
            var all = string.Join('\n', output.Concat(errors));
            Assert.NotEqual(0, launcher.ExitCode);
            var error = Assert.Single(errors);
            Assert.StartsWith("[launcher] jobs: ", error);
            Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), error);
            Assert.DoesNotContain("   at ", all);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}\n{all}");
            Assert.False(File.Exists(Path.Combine(DataDirectory, "postmaster.pid")), "PostgreSQL should not be left running");
        }
        finally
        {
            await launcher.DisposeAsync();
        }
    }
}
