using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>
/// jobs.Pool measured against what multiprocessing.Pool does (CPython 3.11's own Pool tests): each unittest of
/// <c>tests/python/test_pool_fidelity.py</c> runs as its own case against the real API and a real worker that loads
/// <c>tests/python/fidelity/fidelity_functions.py</c> as a module — remote exceptions with their class, args and
/// RemoteTraceback, MaybeEncodingError, classmethods and staticmethods, threads and sockets ended, imap over a
/// generator that raises.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed partial class PoolFidelityTests(FaultSystemFixture system, Xunit.Abstractions.ITestOutputHelper log) : SystemTest(system)
{
    private static readonly string TestFile = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "test_pool_fidelity.py");
    private static readonly string Module = UserCode.Readable(Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "fidelity", "fidelity_functions.py"));

    public static TheoryData<string> Tests()
    {
        var data = new TheoryData<string>();
        foreach (Match m in TestName().Matches(File.ReadAllText(TestFile))) data.Add(m.Groups[1].Value);
        return data;
    }

    private async Task<ChildProcess> StartWorkerAsync(string queue)
    {
        var worker = Fixture.StartWorker("python-fidelity", [queue], workerCount: 4, environment: new() { ["Python__Modules__0__Path"] = Module });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name = $1", "py:fidelity_functions.sqr") > 0
                                               && (await Http.GetAsync("/functions/py:fidelity_functions.sqr")).StatusCode == HttpStatusCode.OK,
            "the worker offers fidelity_functions", 30);
        return worker;
    }

    [Fact]
    public async Task A_python_exceptions_args_are_stored_with_its_error_and_served_by_every_result_endpoint()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = await StartWorkerAsync(queue);
        // A job: the JobView's error and the 424 of /result carry args; a REST client sees them as plain JSON.
        var job = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "py:fidelity_functions.raising", queue }));
        Assert.Equal(("KeyError", "'key'", """["key"]"""),
            (job["error"]!["type"]!.GetValue<string>(), job["error"]!["message"]!.GetValue<string>(), job["error"]!["args"].Compact()));
        var result = await Http.GetAsync($"/jobs/{job["id"]}/result");
        Assert.Equal(HttpStatusCode.FailedDependency, result.StatusCode);
        Assert.Equal("""["key"]""", (await result.JsonAsync())["args"].Compact());
        // A map: the 424 of /results and the stream's failed item.
        var map = await (await Http.PostAsJsonAsync("/maps", new { function = "py:fidelity_functions.fail_on", items = new[] { 1, 2 }, queue })).JsonAsync();
        var results = await Http.GetAsync($"/maps/{map["id"]}/results?timeout=60");
        Assert.Equal(HttpStatusCode.FailedDependency, results.StatusCode);
        Assert.Equal("[2]", (await results.JsonAsync())["args"].Compact());
        var stream = await Http.GetStringAsync($"/maps/{map["id"]}/stream?order=input");
        var failed = stream.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Single(l => l["error"] is not null);
        Assert.Equal("[2]", failed["error"]!["args"].Compact());
        // An exception without JSON-carryable args is stored without them, as before.
        var opaque = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "py:fidelity_functions.raise_unencodable_args", queue }));
        Assert.Equal("failed", opaque["state"]!.GetValue<string>());
        Assert.Null(opaque["error"]!["args"]);
    }

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task Pool_fidelity(string test)
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = await StartWorkerAsync(queue);
        var (exitCode, output, errors) = await Python.UnittestAsync($"test_pool_fidelity.PoolFidelityTests.{test}", new Dictionary<string, string>
        {
            ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/'),
            ["JOBS_QUEUE"] = queue,
        });
        Assert.True(exitCode == 0, $"python3 {test} failed:\n{output}\n{errors}");
        // unittest -v writes the test's name before what it prints, on the same line.
        foreach (var line in errors.Split('\n').Where(l => l.Contains("measured: ", StringComparison.Ordinal)))
            log.WriteLine(line[line.IndexOf("measured: ", StringComparison.Ordinal)..]);
    }

    [GeneratedRegex(@"^    def (test_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex TestName();
}
