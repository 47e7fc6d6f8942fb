using System.Diagnostics;
using System.Globalization;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// The environment of the python3 processes that import and run user modules: built from nothing, never the worker's
/// own. The worker's environment carries its secrets — ConnectionStrings__Jobs with the database password, and where
/// one environment file serves every process, Auth__ApiKeys__* and Callbacks__Secret — and user code must see none of
/// them. What python3 needs is passed; the operator adds more with Python:PassEnvironment and Python:Environment.
/// </summary>
public static class PythonEnvironment
{
    /// <summary>Copied from the worker's environment when it has them: what python3 and ordinary libraries need.</summary>
    public static IReadOnlyList<string> Inherited { get; } = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

    /// <summary>
    /// Also copied: Python's own settings (PYTHONPATH, PYTHONHOME, PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED, …), which
    /// an operator who sets them for the worker means for its python3.
    /// </summary>
    public const string InheritedPrefix = "PYTHON";

    /// <summary>
    /// The host protocol's own variable: whom jobs_host.py's watchdog watches (the worker's pid, not getppid() read
    /// later, when the worker may be gone). jobs_host.py removes it before user code runs.
    /// </summary>
    public const string WorkerPid = "JOBS_WORKER_PID";

    /// <summary>The whole environment of a python3 process under <paramref name="options"/>.</summary>
    public static IReadOnlyDictionary<string, string> For(PythonOptions options)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
            if (variable is { Key: string name, Value: string value } && name.StartsWith(InheritedPrefix, StringComparison.Ordinal)) environment[name] = value;
        foreach (var name in Inherited.Concat(options.PassEnvironment))
            if (Environment.GetEnvironmentVariable(name) is { } value) environment[name] = value;
        foreach (var (name, value) in options.Environment) environment[name] = value;
        environment[WorkerPid] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        return environment;
    }

    /// <summary>Replaces the environment <paramref name="info"/> would inherit with <paramref name="environment"/>.</summary>
    public static void ApplyTo(ProcessStartInfo info, IReadOnlyDictionary<string, string> environment)
    {
        info.Environment.Clear();
        foreach (var (name, value) in environment) info.Environment[name] = value;
    }

    /// <summary>
    /// Starts python3 as <paramref name="user"/> (null: the worker's user); says clearly when that user cannot run it
    /// in the module's folder (a folder or interpreter it may not read, such as one under /root).
    /// </summary>
    public static Process Start(ProcessStartInfo info, string? user, PythonModuleOptions module)
    {
        try
        {
            return Process.Start(info) ?? throw new InvalidOperationException($"Could not start {info.FileName}.");
        }
        catch (System.ComponentModel.Win32Exception e) when (user is not null)
        {
            throw new InvalidOperationException(
                $"Python:User: python3 runs as '{user}', which cannot start {info.FileName} in {module.WorkingDirectory} ({e.Message}). " +
                $"The interpreter (Python:Executable), the module's file and its folders must be readable by '{user}'; " +
                "or set Python:User (empty: the worker's own user).", e);
        }
    }

    /// <summary>
    /// Whether <paramref name="name"/> is configuration of this service as .NET reads it from the environment
    /// (<c>ConnectionStrings__Jobs</c>, <c>DOTNET_Auth__ApiKeys__0__Sha256</c>, …): never passed, even when asked.
    /// </summary>
    public static bool IsServiceSecret(string name)
    {
        var key = name.Replace("__", ":", StringComparison.Ordinal);
        foreach (var prefix in (string[])["DOTNET_", "ASPNETCORE_"])
            if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) key = key[prefix.Length..];
        return key.StartsWith("ConnectionStrings:", StringComparison.OrdinalIgnoreCase)
               || key.StartsWith("Auth:", StringComparison.OrdinalIgnoreCase)
               || key.StartsWith("Callbacks:", StringComparison.OrdinalIgnoreCase);
    }
}
