using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>jobs.Admin (<c>src/python/jobs/</c>) against the real API: each unittest of <c>tests/python/test_admin_client.py</c> as its own case.</summary>
public sealed partial class PythonAdminClientTests(SystemFixture system) : SystemTest(system)
{
    private static readonly string TestFile = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "test_admin_client.py");

    public static TheoryData<string> Tests() => [.. TestName().Matches(File.ReadAllText(TestFile)).Select(m => m.Groups[1].Value)];

    [Theory]
    [MemberData(nameof(Tests))]
    public async Task Python_admin_client(string test)
    {
        var (exitCode, output, errors) = await Python.UnittestAsync($"test_admin_client.AdminClientTests.{test}",
            new Dictionary<string, string> { ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/') });
        Assert.True(exitCode == 0, $"python3 {test} failed:\n{output}\n{errors}");
    }

    [GeneratedRegex(@"^    def (test_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex TestName();
}
