using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// Offers the public top-level functions of the modules in Python:Modules as <c>py:module.function</c>, and the
/// functions listed in Python:Imports under pickle's names. At start each module is described by a python3 process
/// (<c>jobs_host.py describe</c>: <c>inspect.signature</c>, annotations mapped to JSON Schema); calls then go to the
/// module's <see cref="PythonProcessPool"/>. A module whose file changes is described again and served by new
/// processes: new functions are offered, edited ones run their new code, and calls already running finish on the old.
/// </summary>
public sealed class PythonFunctionProvider : BackgroundService, IChangingFunctions
{
    /// <summary>
    /// Where the build puts jobs_host.py with its modules (jobs_host_*.py), jobs_progress.py and the client's package
    /// jobs/, beside the worker.
    /// </summary>
    private static string ShippedFolder => Path.Combine(AppContext.BaseDirectory, "python");

    /// <summary>
    /// The jobs_host.py python3 runs: the shipped one, or — when python3 runs as another user (Python:User) — a copy
    /// that user can read, since the worker's own folder may not be (a clone under /root). The copy is in a folder of
    /// its own with a random name, made by this process and writable by it alone (so no other user can put a host of
    /// its own there), and removed when the worker stops.
    /// </summary>
    private readonly string _hostScript;
    private readonly string? _hostCopy;

    /// <summary>
    /// Python:Executable as python3 is started: a bare name (the default "python3") run as another user is looked up
    /// on PATH for the first one that user can run — the worker's own first match may be out of its reach (pyenv's
    /// shims under /root), while the system's /usr/bin/python3 is not.
    /// </summary>
    private readonly string _executable;

    /// <summary>The longest a module's import (to describe it) may take.</summary>
    public static readonly TimeSpan DescribeTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How often module files are checked for changes.</summary>
    public static readonly TimeSpan WatchInterval = TimeSpan.FromSeconds(1);

    private readonly PythonOptions _python;
    private readonly int _maxCrashes;
    private readonly long _maxResultBytes;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly List<Served> _served = [];
    private volatile IReadOnlyDictionary<string, JobFunction> _current = new Dictionary<string, JobFunction>();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>One module (or the imports) as served now: its file's stamp when described, its processes, its functions.</summary>
    private sealed record Served(PythonModuleOptions Module, string? File, (DateTime, long) Stamp, PythonProcessPool Pool, IReadOnlyList<PythonFunction> Functions);

    public PythonFunctionProvider(IOptions<PythonOptions> options, IOptions<Configuration.JobsOptions> jobs, ILoggerFactory loggers)
    {
        _python = options.Value;
        _maxCrashes = jobs.Value.MaxWorkerCrashes;
        _maxResultBytes = jobs.Value.MaxResultBytes;
        _loggers = loggers;
        _logger = loggers.CreateLogger<PythonFunctionProvider>();
        _environment = PythonEnvironment.For(_python);
        _executable = _python.RunAs is null ? _python.Executable : RunnableByEveryone(_python.Executable);
        if (_python.RunAs is not null && (_python.Modules.Length > 0 || _python.Imports.Length > 0))
        {
            _hostCopy = ReadableCopy(ShippedFolder);
            _hostScript = Path.Combine(_hostCopy, "jobs_host.py");
        }
        else _hostScript = Path.Combine(ShippedFolder, "jobs_host.py");
        if (_python.Modules.Length > 0 || _python.Imports.Length > 0)
            _logger.LogInformation("Python code runs as the OS user {User} ({Executable})", _python.RunAs ?? Environment.UserName, _executable);
        // Described before the worker serves: a job for a module's function must find it from the first pickup.
        foreach (var configured in _python.Modules)
        {
            var path = Resolve(configured.Path);
            _served.Add(Serve(new PythonModuleOptions
            {
                Path = path,
                MaxTasksPerChild = configured.MaxTasksPerChild,
                Initializer = configured.Initializer,
                InitArgs = configured.InitArgs,
            }, path));
        }
        if (_python.Imports.Length > 0) _served.Add(Serve(PythonModuleOptions.ForImports(_python.Imports, _hostCopy), file: null));
        Publish();
    }

    public IReadOnlyDictionary<string, JobFunction> Current => _current;

    public Task Changed => Volatile.Read(ref _changed).Task;

    private Served Serve(PythonModuleOptions module, string? file)
    {
        var stamp = Stamp(file);
        var description = Describe(module);
        var name = description["module"]!.GetValue<string>();
        var pool = new PythonProcessPool(_executable, _hostScript, module, _environment, _python.RunAs, _maxCrashes, _loggers.CreateLogger($"python.{name}"), _maxResultBytes);
        var settings = file is null ? null : PythonFunction.SettingsOf(module);
        var functions = description["functions"]!.AsArray().Select(f => new PythonFunction(name, f!.AsObject(), pool, settings)).ToList();
        _logger.LogInformation("Python module {Module} ({Path}) offers {Functions}", name, file ?? "Python:Imports", string.Join(", ", functions.Select(f => f.Name)));
        // As Pool starts its processes with the pool: the first call does not wait for python3 to start and import.
        _ = pool.WarmAsync();
        return new Served(module, file, stamp, pool, functions);
    }

    private void Publish()
    {
        var functions = new Dictionary<string, JobFunction>(StringComparer.Ordinal);
        foreach (var function in _served.SelectMany(s => s.Functions))
            if (!functions.TryAdd(function.Name, function))
                _logger.LogWarning("Two Python functions are offered as {Name}; the first is served", function.Name);
        _current = functions;
        Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_served.All(s => s.File is null)) return;
        using var timer = new PeriodicTimer(WatchInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var retired = new List<PythonProcessPool>();
                for (var i = 0; i < _served.Count; i++)
                {
                    var served = _served[i];
                    if (served.File is null || Stamp(served.File) == served.Stamp) continue;
                    try
                    {
                        _served[i] = await Task.Run(() => Serve(served.Module, served.File), stoppingToken);
                        retired.Add(served.Pool);
                        _logger.LogInformation("Python module {Path} changed: reloaded", served.File);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        // A half-saved or broken file: keep offering what was loaded, and try again at the next change.
                        // (Processes already started keep its code; one started now would load the broken file.)
                        _served[i] = served with { Stamp = Stamp(served.File) };
                        _logger.LogError("Python module {Path} changed but could not be loaded; still offering the previous version: {Error}", served.File, e.Message);
                    }
                }
                if (retired.Count == 0) continue;
                Publish(); // new calls find the new functions first,
                foreach (var pool in retired) pool.Dispose(); // then the old processes end (running calls finish on the old code)
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static (DateTime, long) Stamp(string? file)
    {
        if (file is null) return default;
        var info = new FileInfo(file);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : default;
    }

    /// <summary>Checked at start (PythonOptions.Validate); a file removed since then is still said clearly.</summary>
    private static string Resolve(string path) =>
        PythonModuleOptions.Resolve(path) ?? throw new FileNotFoundException($"Python:Modules: no module file at '{path}'.", path);

    private JsonObject Describe(PythonModuleOptions module)
    {
        var info = new ProcessStartInfo(_executable)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = module.WorkingDirectory,
        };
        PythonEnvironment.ApplyTo(info, _environment); // importing the module runs user code too: as the user calls run as
        if (_python.RunAs is { } user) info.UserName = user;
        foreach (var arg in (string[])[_hostScript, "describe", .. module.HostTarget, module.Initializer ?? ""]) info.ArgumentList.Add(arg);
        using var process = PythonEnvironment.Start(info, _python.RunAs, module);
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        // Bounded: a module whose import never returns must not hold the worker's start, or every later reload.
        if (!process.WaitForExit(DescribeTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"Python:Modules: importing {string.Join(' ', module.HostTarget)} took longer than {DescribeTimeout.TotalSeconds} s.");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"Python:Modules: python3 could not import {string.Join(' ', module.HostTarget)}: {stderr.Result.Trim()}");
        return JsonNode.Parse(stdout.Result)!.AsObject();
    }

    /// <summary>The first <paramref name="name"/> on PATH every user can run (else the name as given, to fail clearly at start).</summary>
    private static string RunnableByEveryone(string name)
    {
        if (OperatingSystem.IsWindows() || name.Contains('/')) return name;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (!File.Exists(candidate)) continue;
            if (ProcessSecurity.OthersCanReach(candidate, UnixFileMode.OtherExecute)) return candidate;
        }
        return name;
    }

    /// <summary>
    /// Copies the shipped Python files (the package jobs/ too; no __pycache__) into a new folder every user can read
    /// but only this process can write.
    /// </summary>
    private static string ReadableCopy(string shipped)
    {
        var folder = Directory.CreateTempSubdirectory("jobs-python-"); // a random name, 0700 until filled
        CopyReadable(shipped, folder);
        return folder.FullName;
    }

    private static void CopyReadable(string from, DirectoryInfo to)
    {
        foreach (var file in Directory.GetFiles(from, "*.py"))
        {
            var copy = Path.Combine(to.FullName, Path.GetFileName(file));
            File.Copy(file, copy);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        foreach (var package in Directory.GetDirectories(from).Where(d => File.Exists(Path.Combine(d, "__init__.py"))))
            CopyReadable(package, to.CreateSubdirectory(Path.GetFileName(package)));
        if (!OperatingSystem.IsWindows())
            to.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                              | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
    }

    public override void Dispose()
    {
        foreach (var served in _served) served.Pool.Dispose();
        if (_hostCopy is not null)
        {
            try
            {
                Directory.Delete(_hostCopy, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        base.Dispose();
    }
}
