namespace Jobs.Core.Functions.BuiltIn;

/// <summary>Raised by <c>debug.fail</c>: a failure that tests and users can recognise by its type.</summary>
public sealed class DebugFailureException(string message) : Exception(message);

public static class DebugFunctions
{
    [JobFunction("debug.fail", Description = "Throws DebugFailureException with the given message.")]
    public static void Fail(string message) => throw new DebugFailureException(message);

    [JobFunction("debug.crash", DebugOnly = true,
        Description = "Kills the worker process running it (SIGKILL, no cleanup). Only when Jobs:EnableDebugCrash is true.")]
    public static void Crash()
    {
        // SIGKILL to ourselves: like the OOM killer, nothing runs afterwards (FailFast would write a crash dump first).
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        self.Kill();
    }
}
