using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>
/// The stdlib-only Python client (<c>src/python/jobs/</c>) against the real API: each unittest in
/// <c>tests/python/test_pool_client.py</c> runs as its own case, with python3, as a user would run it.
/// </summary>
public sealed partial class PythonClientTests(SystemFixture system) : SystemTest(system)
{
    private static readonly string TestFile = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "test_pool_client.py");

    public static TheoryData<string> Tests()
    {
        var data = new TheoryData<string>();
        foreach (Match m in TestName().Matches(File.ReadAllText(TestFile))) data.Add(m.Groups[1].Value);
        return data;
    }

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task Python_client(string test)
    {
        var (exitCode, output, errors) = await Python.UnittestAsync($"test_pool_client.PoolClientTests.{test}",
            new Dictionary<string, string> { ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/') });
        Assert.True(exitCode == 0, $"python3 {test} failed:\n{output}\n{errors}");
    }

    [GeneratedRegex(@"^    def (test_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex TestName();
}
