using System.Diagnostics;
using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>
/// The stdlib-only Python client (<c>src/python/jobs.py</c>) against the real API: each unittest in
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
        var info = new ProcessStartInfo("python3", ["-m", "unittest", "-v", $"test_pool_client.PoolClientTests.{test}"])
        {
            WorkingDirectory = Path.GetDirectoryName(TestFile)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/');
        using var python = Process.Start(info)!;
        var output = python.StandardOutput.ReadToEndAsync();
        var errors = python.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await python.WaitForExitAsync(timeout.Token);
        Assert.True(python.ExitCode == 0, $"python3 {test} failed:\n{await output}\n{await errors}");
    }

    [GeneratedRegex(@"^    def (test_\w+)\(", RegexOptions.Multiline)]
    private static partial Regex TestName();
}
