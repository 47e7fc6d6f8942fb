using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// Long-lived python3 processes for one module, like Pool's worker processes: started on demand (at most one per
/// concurrent call, so at most one per worker slot), each running the module's initializer once, replaced after
/// MaxTasksPerChild calls, and terminated — then replaced — when a call is canceled or times out, since Python code
/// cannot be interrupted from outside. A process that dies mid-call fails that call and is replaced. Each process gets
/// <paramref name="environment"/> (see <see cref="PythonEnvironment"/>), never the worker's own. Each call tells the
/// process <paramref name="maxResultBytes"/> (Jobs:MaxResultBytes; 0: none), so a larger result is refused before it travels.
/// </summary>
/// <param name="user">The OS user python3 runs as (<see cref="PythonOptions.RunAs"/>); null: the worker's own.</param>
public sealed class PythonProcessPool(string executable, string hostScript, PythonModuleOptions module,
    IReadOnlyDictionary<string, string> environment, string? user, int maxCrashes, ILogger logger, long maxResultBytes = 0) : IDisposable
{
    private readonly ConcurrentBag<PythonProcess> _idle = [];

    /// <summary>
    /// Runs the call; a python3 process that dies under it (os._exit, a segfault, the OOM killer) is replaced and the
    /// call re-run, as a dead worker's job is, until it has killed Jobs:MaxWorkerCrashes processes: then the job fails instead of killing processes forever.
    /// </summary>
    public async Task<JsonNode?> CallAsync(string function, JsonElement args, JsonElement kwargs, JobContext context, CancellationToken ct)
    {
        for (var crashes = 1; ; crashes++)
        {
            try
            {
                return await CallOnceAsync(function, args, kwargs, context, ct);
            }
            catch (PythonProcessDiedException e) when (!ct.IsCancellationRequested)
            {
                logger.LogWarning("{Function}: {Message} ({Crashes} of {Max})", function, e.Message, crashes, maxCrashes);
                if (crashes >= maxCrashes)
                    throw new PythonProcessDiedException($"{e.Message} It killed its python3 process {crashes} times (Jobs:MaxWorkerCrashes); it is not run again.");
            }
        }
    }

    private async Task<JsonNode?> CallOnceAsync(string function, JsonElement args, JsonElement kwargs, JobContext context, CancellationToken ct)
    {
        if (!_idle.TryTake(out var process) || process.HasExited) process = await PythonProcess.StartAsync(executable, hostScript, module, environment, user, logger, ct);
        var keep = false;
        try
        {
            var result = await process.CallAsync(function, args, kwargs, context, maxResultBytes, ct);
            keep = !process.Retired && (module.MaxTasksPerChild <= 0 || process.Calls < module.MaxTasksPerChild);
            return result;
        }
        catch (PythonFunctionException)
        {
            keep = !process.Retired; // the function raised; its process is fine (unless the call left a thread running)
            throw;
        }
        finally
        {
            if (keep && !process.HasExited && !_retired) _idle.Add(process);
            else process.Dispose();
            if (_retired) DisposeIdle(); // retired while this call ran: nothing of the old code stays
        }
    }

    private volatile bool _retired;

    /// <summary>Starts one process ahead of the first call (a failure is left for that call to meet and report).</summary>
    public async Task WarmAsync()
    {
        try
        {
            var process = await PythonProcess.StartAsync(executable, hostScript, module, environment, user, logger, CancellationToken.None);
            if (_retired) process.Dispose();
            else _idle.Add(process);
        }
        catch (Exception e)
        {
            logger.LogDebug(e, "Starting a python3 process ahead of the first call failed");
        }
    }

    /// <summary>
    /// The module's file changed: no call starts on these processes any more. Idle ones end now; each running call
    /// finishes on the code it started with, and its process then ends.
    /// </summary>
    public void Dispose()
    {
        _retired = true;
        DisposeIdle();
    }

    private void DisposeIdle()
    {
        while (_idle.TryTake(out var process)) process.Dispose();
    }
}
