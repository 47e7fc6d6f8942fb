using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// One python3 process running <c>jobs_host.py serve</c>: one call at a time, JSON lines both ways on the pipes it was
/// started with, which the host moves to private descriptors before user code runs (user code's descriptors 1 and 2
/// both go to stderr, logged with the job). Every request carries a fresh random id that each line back must echo: a
/// line that is not JSON, answers another call, or comes between calls means the process is broken — it is ended and
/// its call re-run on a fresh one, as when it crashes — and is never taken as an answer.
/// </summary>
public sealed class PythonProcess : IDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _stderrTail = new();
    private readonly System.Threading.Channels.Channel<string> _lines = System.Threading.Channels.Channel.CreateBounded<string>(16);
    private readonly ILogger _logger;

    private PythonProcess(Process process, ILogger logger)
    {
        _process = process;
        _logger = logger;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            // The user's output (print, os.write(1, …), subprocesses), with the job it was printed by (Python:Modules code runs one call at a time).
            if (_job is { } job) logger.LogInformation("python3[{Pid}] job {JobId}: {Line}", _process.Id, job, e.Data);
            else logger.LogInformation("python3[{Pid}]: {Line}", _process.Id, e.Data);
            lock (_stderrTail)
            {
                _stderrTail.Enqueue(e.Data);
                while (_stderrTail.Count > 20) _stderrTail.Dequeue();
            }
        };
        _process.BeginErrorReadLine();
        // Read all the time, not only during a call: a line that arrives between calls is seen as such.
        _ = Task.Run(async () =>
        {
            try
            {
                while (await _process.StandardOutput.ReadLineAsync() is { } line) await _lines.Writer.WriteAsync(line);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
            }
            _lines.Writer.TryComplete();
        });
    }

    private volatile object? _job;

    public int Calls { get; private set; }
    public bool HasExited => _process.HasExited;

    /// <summary>The host asked not to be reused: its last call left a thread running in it.</summary>
    public bool Retired { get; private set; }

    public static async Task<PythonProcess> StartAsync(string executable, string hostScript, PythonModuleOptions module,
        IReadOnlyDictionary<string, string> environment, string? user, ILogger logger, CancellationToken ct)
    {
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // User code runs in its module's folder (relative paths in it mean what its author meant), not the worker's bin/.
            WorkingDirectory = module.WorkingDirectory,
        };
        PythonEnvironment.ApplyTo(info, environment);
        if (user is not null) info.UserName = user;
        foreach (var arg in (string[])["-u", hostScript, "serve", .. module.HostTarget, module.Initializer ?? "", module.InitArgs]) info.ArgumentList.Add(arg);
        var process = new PythonProcess(PythonEnvironment.Start(info, user, module), logger);
        var ready = await process.ReadLineAsync(ct);
        if (!IsReady(ready))
        {
            process.Dispose();
            throw new PythonProcessDiedException($"python3 could not load {module.Path}{(module.Initializer is null ? "" : $" or run {module.Initializer}")}: {process.Tail()}");
        }
        return process;
    }

    private static bool IsReady(string? line)
    {
        try
        {
            return line is not null && JsonNode.Parse(line) is JsonObject ready && ready["ready"] is JsonValue value && value.TryGetValue<bool>(out var ok) && ok;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public async Task<JsonNode?> CallAsync(string function, JsonElement args, JsonElement kwargs, JobContext context, long maxResultBytes, CancellationToken ct)
    {
        Calls++;
        // Kept after the call: stderr is read on its own, and a line printed just before the answer may be read after it.
        _job = context.JobId == Guid.Empty ? null : context.JobId;
        if (_lines.Reader.TryRead(out var between)) throw Broken(function, "wrote a line between calls", between);
        // Python cannot be interrupted from outside: a cancel or timeout terminates the process (the pool replaces it).
        await using var kill = ct.Register(() => { try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } });
        var id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var request = new JsonObject
        {
            ["id"] = id, ["function"] = function, ["args"] = JsonNode.Parse(args.GetRawText()), ["kwargs"] = JsonNode.Parse(kwargs.GetRawText()),
            ["maxResultBytes"] = maxResultBytes,
        };
        if (context.ArgumentTuples is { } tuples) request["tuples"] = JsonNode.Parse(tuples);
        try
        {
            await _process.StandardInput.WriteLineAsync(request.ToJsonString());
            await _process.StandardInput.FlushAsync(CancellationToken.None);
        }
        catch (IOException)
        {
            // It ended before it read the request: the read below finds it gone.
        }
        while (true)
        {
            var line = await ReadLineAsync(CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            if (line is null)
            {
                await _process.WaitForExitAsync(CancellationToken.None);
                throw new PythonProcessDiedException($"The python3 process running {function} exited with code {_process.ExitCode}. {Tail()}".Trim());
            }
            JsonObject message;
            try
            {
                // Any depth python3 can write: how deep a result may be is StoredValueLimits' to say (naming the limit), not the parser's 64.
                message = JsonNode.Parse(line, documentOptions: new JsonDocumentOptions { MaxDepth = 1024 }) as JsonObject
                          ?? throw Broken(function, "sent a line that is not a JSON object", line);
            }
            catch (JsonException)
            {
                throw Broken(function, "sent a line that is not JSON", line);
            }
            if (message["id"] is not JsonValue answers || !answers.TryGetValue<string>(out var of) || of != id)
                throw Broken(function, "sent a line for another call", line);
            try
            {
                if (message["progress"] is { } progress)
                {
                    await context.ReportProgressAsync(progress.GetValue<double>(), message["message"]?.GetValue<string>(), ct);
                    continue;
                }
                Retired = message["retire"]?.GetValue<bool>() == true;
                if (message["ok"]!.GetValue<bool>())
                {
                    context.ResultTuples = message["tuples"] is JsonArray { Count: > 0 } pointers ? pointers.ToJsonString() : null;
                    return message["result"]?.DeepClone();
                }
                var error = message["error"]!;
                throw new PythonFunctionException(error["type"]!.GetValue<string>(), error["message"]!.GetValue<string>(), error["stackTrace"]?.GetValue<string>() ?? "",
                    error["args"] is JsonArray errorArgs ? (JsonArray)errorArgs.DeepClone() : null);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException && !ct.IsCancellationRequested)
            {
                throw Broken(function, "sent a line of the wrong shape", line);
            }
        }
    }

    /// <summary>Ends a process that broke the protocol; its call is re-run on a fresh one, as when a process crashes.</summary>
    private PythonProcessDiedException Broken(string function, string what, string line)
    {
        _logger.LogWarning("python3[{Pid}] running {Function} {What}; it is ended: {Line}", _process.Id, function, what, line.Length > 200 ? line[..200] + "…" : line);
        Dispose();
        return new PythonProcessDiedException($"The python3 process running {function} {what}; it was ended.");
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        try
        {
            return await _lines.Reader.ReadAsync(ct);
        }
        catch (System.Threading.Channels.ChannelClosedException)
        {
            return null;
        }
    }

    private string Tail()
    {
        lock (_stderrTail) return string.Join('\n', _stderrTail);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
