using System.Diagnostics;

namespace Jobs.Launcher.Processes;

/// <summary>
/// A program of ours run as a separate process, its output prefixed with its name. Stopping sends SIGTERM,
/// waits for a graceful exit, then kills.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private bool _disposed;

    public string Name { get; }
    public int Id => _process.Id;
    public bool HasExited => _disposed || _process.HasExited;
    public int ExitCode => _process.ExitCode;

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>
    /// Starts <paramref name="assembly"/> through its apphost (or <c>dotnet</c>) with extra environment variables; its
    /// stderr goes to <paramref name="errors"/> when given, else with its stdout to <paramref name="output"/>.
    /// </summary>
    /// <param name="launch">
    /// A program that execs the rest of its command line, e.g. <see cref="NetworkHost.Launch"/> (the process keeps its id).
    /// </param>
    public static ChildProcess Start(string name, string assembly, IReadOnlyDictionary<string, string?> environment,
        Action<string>? output = null, IEnumerable<string>? args = null, Action<string>? errors = null, IReadOnlyList<string>? launch = null)
    {
        if (!File.Exists(assembly))
            throw new FileNotFoundException($"{assembly} does not exist; build the solution first (dotnet build Jobs.sln).", assembly);
        var apphost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        string[] command = [.. launch ?? [], .. File.Exists(apphost) ? [apphost] : new[] { "dotnet", assembly }, .. args ?? []];
        var info = new ProcessStartInfo(command[0]);
        foreach (var arg in command.Skip(1)) info.ArgumentList.Add(arg);
        info.UseShellExecute = false;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.WorkingDirectory = Path.GetDirectoryName(assembly)!;
        foreach (var (key, value) in environment) info.Environment[key] = value;

        output ??= Console.WriteLine;
        errors ??= output;
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output($"[{name}] {e.Data}"); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) errors($"[{name}] {e.Data}"); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ChildProcess(name, process);
    }

    public Task WaitForExitAsync(CancellationToken ct = default) => _process.WaitForExitAsync(ct);

    /// <summary>SIGTERM, then SIGKILL if it has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (HasExited) return;
        Posix.Terminate(_process.Id);
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
        }
    }

    /// <summary>
    /// SIGKILL of this process alone, as when the OOM killer or <c>kill -9</c> takes it: its own children (a worker's
    /// python3 processes) are not killed with it here; they notice and exit by themselves.
    /// </summary>
    public void Kill()
    {
        if (_disposed) return;
        try
        {
            _process.Kill(entireProcessTree: false);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        await StopAsync(TimeSpan.FromSeconds(10));
        _disposed = true;
        _process.Dispose();
    }
}
