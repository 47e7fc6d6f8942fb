using System.Text.Json.Nodes;

namespace Jobs.Core.Functions.BuiltIn;

/// <summary>Raised by <c>debug.fail</c>: a failure that tests and users can recognise by its type.</summary>
public sealed class DebugFailureException(string message) : Exception(message);

public static class DebugFunctions
{
    [JobFunction("debug.fail", Description = "Throws DebugFailureException with the given message.")]
    public static void Fail(string message) => throw new DebugFailureException(message);

    [JobFunction("debug.flaky", Description = "Fails with DebugFailureException on attempts before `succeedOn`, then returns the attempt it succeeded on: a failure whose outcome you control (retries, POST /jobs/{id}/retry).")]
    public static int Flaky(int succeedOn, JobContext context) =>
        context.Attempt >= succeedOn ? context.Attempt : throw new DebugFailureException($"attempt {context.Attempt} fails; attempt {succeedOn} succeeds");

    /// <summary>Most levels <see cref="Nested"/> builds: beyond any Jobs:MaxJsonDepth (at most 256), which stops the result.</summary>
    public const int MaxNestedDepth = 1000;

    /// <summary>Most characters <see cref="Text"/> makes: 64 Mi, beyond Jobs:MaxResultBytes' default, which stops the result.</summary>
    public const int MaxTextLength = 64 * 1024 * 1024;

    [JobFunction("debug.nested", Description = "A value nested `depth` arrays deep ([[…[0]…]]), to see Jobs:MaxJsonDepth at work. depth ≤ 1000.")]
    public static JsonNode Nested(int depth)
    {
        if (depth is < 0 or > MaxNestedDepth) throw new ArgumentOutOfRangeException(nameof(depth), depth, $"depth must be between 0 and {MaxNestedDepth}.");
        JsonNode value = 0;
        for (var i = 0; i < depth; i++) value = new JsonArray(value);
        return value;
    }

    [JobFunction("debug.echo", Description = "Returns its argument, any JSON value, as it came.")]
    public static JsonNode? Echo(JsonNode? value) => value;

    [JobFunction("debug.text", Description = "A string of `length` copies of `fill` (one character), to see Jobs:MaxResultBytes at work. length ≤ 64 Mi.")]
    public static string Text(int length, string fill = "x")
    {
        if (length is < 0 or > MaxTextLength) throw new ArgumentOutOfRangeException(nameof(length), length, $"length must be between 0 and {MaxTextLength}.");
        if (fill.Length != 1) throw new ArgumentException("fill is one character.", nameof(fill));
        return new string(fill[0], length);
    }

    [JobFunction("debug.crash", DebugOnly = true,
        Description = "Kills the worker process running it (SIGKILL, no cleanup); with `when` false, returns instead (so one item of a map can be the one that kills). Only when Jobs:EnableDebugCrash is true.")]
    public static void Crash(bool when = true)
    {
        if (!when) return;
        // SIGKILL to ourselves: like the OOM killer, nothing runs afterwards (FailFast would write a crash dump first).
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        self.Kill();
    }
}
