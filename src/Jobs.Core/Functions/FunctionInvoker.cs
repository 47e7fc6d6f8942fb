using System.Diagnostics;
using System.Text.Json;
using Jobs.Core.Configuration;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Functions;

/// <summary>How one call ended: a result (JSON text), a failure, or interrupted (canceled or the worker stopping), and how long it ran.</summary>
public readonly record struct Invocation(string? Result, Exception? Failure, bool Interrupted, TimeSpan Duration);

/// <summary>
/// Runs one call of a function by name, for a job and for each item of a map alike: looks the function up, parses the
/// arguments, gives it a token that fires on <c>interrupt</c> and at its timeout, encodes its result (or says why it
/// cannot be stored: <see cref="MaybeEncodingError"/>, also when it is deeper or larger than the service stores,
/// <see cref="StoredValueLimits"/>), and measures it. It never throws for the function's sake.
/// </summary>
public sealed class FunctionInvoker(FunctionRegistry registry, IOptions<JobsOptions>? options = null)
{
    private readonly JobsOptions _limits = options?.Value ?? new JobsOptions();

    /// <param name="function">The function's public name; unknown here, the call fails with <see cref="UnknownFunctionException"/>.</param>
    /// <param name="argsJson">The positional arguments, a JSON array.</param>
    /// <param name="kwargs">The keyword arguments, a JSON object (a map parses its own once for all items).</param>
    /// <param name="context">What the function sees of its job: id, attempt, progress reporting.</param>
    /// <param name="timeout">With one, the call fails with <see cref="JobTimeoutException"/> once it has run this long.</param>
    /// <param name="isolate">
    /// Run on a pool thread and wait with WaitAsync, so that a function which ignores its token (or never yields) still loses
    /// its call on interrupt or timeout (its thread runs on until it returns, its result discarded). Always so with a timeout;
    /// without one a map item runs inline, as maps are hot.
    /// </param>
    /// <param name="interrupt">Cancel (DELETE) or the worker stopping: the call ends <see cref="Invocation.Interrupted"/>.</param>
    public async Task<Invocation> InvokeAsync(string function, string argsJson, JsonElement kwargs, JobContext context, TimeSpan? timeout,
        bool isolate, CancellationToken interrupt)
    {
        var clock = Stopwatch.StartNew();
        // Only a call with a timeout pays for its token sources.
        using var deadline = timeout is { } t ? new CancellationTokenSource(t) : null;
        using var linked = deadline is null ? null : CancellationTokenSource.CreateLinkedTokenSource(interrupt, deadline.Token);
        var token = linked?.Token ?? interrupt;
        try
        {
            if (!registry.TryGet(function, out var callee)) throw new UnknownFunctionException(function);
            using var args = JsonDocument.Parse(argsJson);
            var argsRoot = args.RootElement;
            var result = isolate || deadline is not null
                ? await Task.Run(() => callee.InvokeAsync(argsRoot, kwargs, context, token), token).WaitAsync(token)
                : await callee.InvokeAsync(argsRoot, kwargs, context, token);
            return new Invocation(StoredValueLimits.CheckResult(result, _limits), null, false, clock.Elapsed);
        }
        catch (Exception) when (interrupt.IsCancellationRequested)
        {
            return new Invocation(null, null, true, clock.Elapsed);
        }
        catch (Exception e)
        {
            var failure = deadline?.IsCancellationRequested == true ? new JobTimeoutException(function, timeout!.Value) : e;
            return new Invocation(null, failure, false, clock.Elapsed);
        }
    }
}
