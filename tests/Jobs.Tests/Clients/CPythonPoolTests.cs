using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Clients;

/// <summary>
/// CPython's own Pool tests — _TestPool, _TestPoolWorkerErrors and _TestPoolWorkerLifetime of the interpreter's
/// test._test_multiprocessing, 31 tests — run against jobs.Pool on the real API and a real worker that offers the
/// functions they send (tests/python/cpython_pool_tests.py). Every test passes except those the harness lists in
/// KNOWN_FAILURES with their causes; a listed test that passes fails this test too, so the list only shrinks. The harness
/// runs with the workers' interpreter (<see cref="UserCode.Interpreter"/>), so both sides use the same test module.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class CPythonPoolTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private static readonly string Harness = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "cpython_pool_tests.py");

    [Fact]
    public async Task CPythons_Pool_tests_pass_on_jobs_Pool_but_for_the_listed_ones()
    {
        var queue = SystemFixture.PrivateQueue();
        var imports = JsonSerializer.Deserialize<string[]>((await RunAsync(["--worker-imports"], [], TimeSpan.FromSeconds(30))).Output)!;
        var environment = new Dictionary<string, string?>();
        for (var i = 0; i < imports.Length; i++) environment[$"Python__Imports__{i}"] = imports[i];
        // Four slots, as the tests' shared Pool(4).
        await using var worker = Fixture.StartWorker("python-cpython", [queue], workerCount: 4, environment: environment);
        await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:test._test_multiprocessing.sqr")).StatusCode == HttpStatusCode.OK
                                               && (await Http.GetAsync("/functions/py:time.sleep")).StatusCode == HttpStatusCode.OK,
            "the worker offers test._test_multiprocessing's functions (Debian: libpython3.11-testsuite)", 30);

        var (exitCode, text, errors) = await RunAsync([], new()
        {
            ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/'),
            ["JOBS_QUEUE"] = queue,
        }, TimeSpan.FromMinutes(10));
        var outcomes = text.Split('\n').Where(l => l.StartsWith("CPYTHON ", StringComparison.Ordinal)).ToList();
        foreach (var line in outcomes) output.WriteLine(line);
        // CPython's ProcessesMixin reports threads a test class left running ("Warning -- Dangling threads: …").
        foreach (var line in errors.Split('\n').Where(l => l.StartsWith("Warning -- ", StringComparison.Ordinal))) output.WriteLine(line);
        Assert.True(exitCode == 0 && outcomes.Count == 32,
            $"a test outside the harness's KNOWN_FAILURES failed, or one in it passed (exit code {exitCode}):\n{text}\n{errors}");
    }

    private static async Task<(int ExitCode, string Output, string Errors)> RunAsync(string[] arguments, Dictionary<string, string> environment, TimeSpan limit)
    {
        var info = new ProcessStartInfo(UserCode.Interpreter, [Harness, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        using var python = Process.Start(info)!;
        var text = python.StandardOutput.ReadToEndAsync();
        var errors = python.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await python.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            python.Kill(entireProcessTree: true);
            throw new TimeoutException($"the harness ran longer than {limit}:\n{await text}\n{await errors}");
        }
        return (python.ExitCode, await text, await errors);
    }
}
