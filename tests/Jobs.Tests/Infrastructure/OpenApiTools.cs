using System.Diagnostics;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// The pinned tools that read the OpenAPI document, all in tests/openapi: npm's (package.json: Redocly CLI,
/// openapi-typescript, openapi-fetch, TypeScript) and .NET's (dotnet-tools.json: NSwag, Kiota). Each is installed once
/// per test run, the first time a test needs it.
/// </summary>
public static class OpenApiTools
{
    public static readonly string Folder = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "openapi");
    private static readonly SemaphoreSlim Installing = new(1, 1);
    private static bool _npmInstalled, _dotnetInstalled;

    /// <summary>tests/openapi/node_modules, installed with <c>npm ci</c> from package-lock.json if it is not there.</summary>
    public static async Task<string> NodeModulesAsync()
    {
        await Installing.WaitAsync();
        try
        {
            var modules = Path.Combine(Folder, "node_modules");
            if (_npmInstalled) return modules;
            var node = await RunAsync("node", ["--version"], Folder);
            Assert.True(Version.TryParse(node.Output.Trim().TrimStart('v'), out var version) && version >= new Version(20, 19),
                $"The npm tools of tests/openapi need Node.js ≥ 20.19; node --version says '{node.Output.Trim()}'.");
            string[] needed = ["@redocly/cli", "openapi-typescript", "openapi-fetch", "typescript", "@types/node"];
            if (!needed.All(p => File.Exists(Path.Combine(modules, p, "package.json"))))
            {
                var install = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], Folder);
                Assert.True(install.ExitCode == 0, $"npm ci in tests/openapi failed ({install.ExitCode}):\n{install.Output}\n{install.Errors}");
            }
            _npmInstalled = true;
            return modules;
        }
        finally
        {
            Installing.Release();
        }
    }

    /// <summary>Restores the .NET tools of tests/openapi/dotnet-tools.json (NSwag, Kiota) into the NuGet cache.</summary>
    public static async Task DotnetToolsAsync()
    {
        await Installing.WaitAsync();
        try
        {
            if (_dotnetInstalled) return;
            var restore = await RunAsync("dotnet", ["tool", "restore"], Folder);
            Assert.True(restore.ExitCode == 0, $"dotnet tool restore in tests/openapi failed ({restore.ExitCode}):\n{restore.Output}\n{restore.Errors}");
            _dotnetInstalled = true;
        }
        finally
        {
            Installing.Release();
        }
    }

    /// <summary>Runs <paramref name="program"/> to its end (at most <paramref name="timeout"/>, 5 minutes by default).</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunAsync(string program, IEnumerable<string> arguments, string directory,
        TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["NO_COLOR"] = "1";
        info.Environment["REDOCLY_TELEMETRY"] = "off";
        info.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        info.Environment["KIOTA_UPDATE__DISABLED"] = "true"; // no GitHub here: Kiota's update check would log a stack trace
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"'{program}' is not on PATH ({e.Message}): the OpenAPI tools need Node.js ≥ 20.19 and npm (Debian: apt-get install nodejs npm) and the .NET SDK.");
            throw;
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{program} {string.Join(' ', arguments)} did not end within {timeout ?? TimeSpan.FromMinutes(5)}:\n{await output}\n{await errors}");
            }
            return (process.ExitCode, await output, await errors);
        }
    }
}
