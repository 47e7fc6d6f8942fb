using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// Offers the public top-level functions of the modules in Python:Modules as <c>py:module.function</c>. At start
/// each module is described by a python3 process (<c>jobs_host.py describe</c>: <c>inspect.signature</c>, annotations
/// mapped to JSON Schema); calls then go to the module's <see cref="PythonProcessPool"/>.
/// </summary>
public sealed class PythonFunctionProvider(IOptions<PythonOptions> options, IOptions<Configuration.JobsOptions> jobs, ILoggerFactory loggers) : IFunctionProvider, IDisposable
{
    /// <summary>Where the build puts jobs_host.py and jobs_progress.py, beside the worker.</summary>
    public static string HostScript => Path.Combine(AppContext.BaseDirectory, "python", "jobs_host.py");

    private readonly List<PythonProcessPool> _pools = [];

    public IEnumerable<JobFunction> GetFunctions()
    {
        var python = options.Value;
        var logger = loggers.CreateLogger<PythonFunctionProvider>();
        var environment = PythonEnvironment.For(python);
        foreach (var module in python.Modules)
        {
            var path = Resolve(module.Path);
            var description = Describe(python.Executable, path, environment);
            var name = description["module"]!.GetValue<string>();
            var pool = new PythonProcessPool(python.Executable, HostScript, new PythonModuleOptions
            {
                Path = path,
                MaxTasksPerChild = module.MaxTasksPerChild,
                Initializer = module.Initializer,
                InitArgs = module.InitArgs,
            }, environment, jobs.Value.MaxWorkerCrashes, loggers.CreateLogger($"python.{name}"));
            _pools.Add(pool);
            var functions = description["functions"]!.AsArray().Select(f => new PythonFunction(name, f!.AsObject(), pool)).ToList();
            logger.LogInformation("Python module {Module} ({Path}) offers {Functions}", name, path, string.Join(", ", functions.Select(f => f.Name)));
            foreach (var function in functions) yield return function;
        }
    }

    /// <summary>Checked at start (PythonOptions.Validate); a file removed since then is still said clearly.</summary>
    private static string Resolve(string path) =>
        PythonModuleOptions.Resolve(path) ?? throw new FileNotFoundException($"Python:Modules: no module file at '{path}'.", path);

    private static JsonObject Describe(string executable, string path, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = PythonModuleOptions.Folder(path),
        };
        PythonEnvironment.ApplyTo(info, environment); // importing the module runs user code too
        foreach (var arg in (string[])[HostScript, "describe", path]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {executable}.");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60))) process.Kill(entireProcessTree: true);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"Python:Modules: python3 could not import {path}: {stderr.Result.Trim()}");
        return JsonNode.Parse(stdout)!.AsObject();
    }

    public void Dispose()
    {
        foreach (var pool in _pools) pool.Dispose();
    }
}
