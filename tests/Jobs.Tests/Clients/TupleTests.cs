using System.Net;
using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>
/// Python's tuples between jobs.Pool and Python functions (issue 23): each unittest of tests/python/test_pool_tuples.py
/// against the real API and a worker loading tests/python/tuple_functions.py. Before: every tuple arrived as a list,
/// so set(pool.map(pair, xs)) raised "unhashable type: 'list'".
/// </summary>
public sealed partial class TupleTests(SystemFixture system) : SystemTest(system)
{
    private static readonly string Folder = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python");

    public static TheoryData<string> Tests() =>
        [.. TestName().Matches(File.ReadAllText(Path.Combine(Folder, "test_pool_tuples.py"))).Select(m => m.Groups[1].Value)];

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task Python_tuples(string test)
    {
        var queue = SystemFixture.PrivateQueue();
        var module = Path.Combine(UserCode.TempFolder("jobs-tuples-").FullName, "tuple_functions.py");
        File.Copy(Path.Combine(Folder, "tuple_functions.py"), module);
        await using var worker = Fixture.StartWorker("tuple-worker", [queue], workerCount: 2, environment: new() { ["Python__Modules__0__Path"] = module });
        // The stored offer first: the API may still know the previous case's worker's offers, withdrawn since.
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name LIKE 'py:tuple_functions.%'") >= 4
                                               && (await Http.GetAsync("/functions/py:tuple_functions.echo")).StatusCode == HttpStatusCode.OK,
            "the worker offers tuple_functions", 30);
        var (exitCode, output, errors) = await Python.UnittestAsync($"test_pool_tuples.TupleTests.{test}", new Dictionary<string, string>
        {
            ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/'),
            ["JOBS_QUEUE"] = queue,
        });
        Assert.True(exitCode == 0, $"python3 {test} failed:\n{output}\n{errors}");
    }

    [GeneratedRegex(@"^    def (test_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex TestName();
}
