using System.Diagnostics;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>Runs a Python unittest from tests/python with python3, as a user would, against the fixture's API.</summary>
public static class Python
{
    /// <summary>Runs <c>python3 -m unittest -v <paramref name="target"/></c>; returns exit code, stdout and stderr.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> UnittestAsync(string target, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("python3", ["-m", "unittest", "-v", target])
        {
            WorkingDirectory = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        using var python = Process.Start(info)!;
        var output = python.StandardOutput.ReadToEndAsync();
        var errors = python.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await python.WaitForExitAsync(timeout.Token);
        return (python.ExitCode, await output, await errors);
    }
}
