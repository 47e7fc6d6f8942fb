using System.Diagnostics;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Clients;

/// <summary>
/// The Python client is a real package (<c>src/python/pyproject.toml</c>, distribution <c>jobs-pool</c>): pip installs
/// it into a fresh venv, offline, and <c>import jobs</c> then works from outside the repository, with its metadata.
/// </summary>
public sealed class PythonPackageFacts
{
    private const string Distribution = "jobs-pool";

    [Fact]
    public async Task Pip_installs_the_client_into_a_venv_without_a_package_index()
    {
        var folder = Directory.CreateTempSubdirectory("jobs-pip-").FullName;
        try
        {
            // No index here: pip cannot fetch setuptools into an isolated build environment, so the venv sees the
            // interpreter's own setuptools and wheel (--system-site-packages) and pip builds with them.
            var venv = Path.Combine(folder, "venv");
            await RunAsync(await BuildingPythonAsync(), ["-m", "venv", "--system-site-packages", venv], folder);
            var python = Path.Combine(venv, "bin", "python");
            await RunAsync(python, ["-m", "pip", "install", "--no-build-isolation", "--no-index", "--disable-pip-version-check", "--quiet",
                                    Path.Combine(ProgramPaths.RepositoryRoot, "src", "python")], folder);

            var output = await RunAsync(python, ["-c", $"""
                import importlib.metadata, importlib.util, jobs, jobs_progress
                print(jobs.__file__)
                print(jobs_progress.__file__)
                print(importlib.metadata.version("{Distribution}"))
                print(jobs.Pool.__name__, all(importlib.util.find_spec(m) is None for m in
                                              ("jobs_host", "jobs_host_functions", "jobs_host_processes", "jobs_host_values")))
                """], folder);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(4, lines.Length);
            Assert.StartsWith(venv + Path.DirectorySeparatorChar, lines[0], StringComparison.Ordinal);
            Assert.StartsWith(venv + Path.DirectorySeparatorChar, lines[1], StringComparison.Ordinal);
            Assert.Equal("1.0.0", lines[2]);
            Assert.Equal("Pool True", lines[3]);   // the worker's jobs_host.py and its modules are not part of the package
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// python3 when it can build a package offline (venv, setuptools, wheel), else Debian's /usr/bin/python3, which
    /// .ci/run equips (python3-venv, python3-pip): a pyenv python3 first on PATH may have setuptools but no wheel.
    /// </summary>
    private static async Task<string> BuildingPythonAsync()
    {
        string[] candidates = ["python3", "/usr/bin/python3"];
        foreach (var candidate in candidates)
        {
            try
            {
                await RunAsync(candidate, ["-c", "import ensurepip, setuptools, wheel"], Path.GetTempPath());
                return candidate;
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // not this one
            }
        }
        throw new InvalidOperationException($"None of {string.Join(", ", candidates)} has venv, setuptools and wheel: " +
                                            "apt-get install python3-venv python3-pip (as .ci/run does).");
    }

    /// <summary>Runs a program in <paramref name="directory"/> without PYTHONPATH/PYTHONHOME; its stdout, or an exception with both streams.</summary>
    private static async Task<string> RunAsync(string program, string[] arguments, string directory)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment.Remove("PYTHONPATH");
        info.Environment.Remove("PYTHONHOME");
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{await output}\n{await errors}");
        return await output;
    }
}
