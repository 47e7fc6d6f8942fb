using System.Runtime.InteropServices;

namespace Jobs.Launcher.Processes;

/// <summary>The two POSIX calls .NET does not expose: who we are, and SIGTERM (Process.Kill sends SIGKILL).</summary>
public static partial class Posix
{
    public const int SigTerm = 15;

    public static bool IsRoot => Jobs.Core.ProcessSecurity.IsRoot;

    public static void Terminate(int pid)
    {
        if (OperatingSystem.IsWindows()) return;
        _ = kill(pid, SigTerm);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
