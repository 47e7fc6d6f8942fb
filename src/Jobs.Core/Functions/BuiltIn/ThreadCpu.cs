using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Jobs.Core.Functions.BuiltIn;

/// <summary>
/// CPU time used by the calling thread (Linux: clock_gettime(CLOCK_THREAD_CPUTIME_ID), what Python's
/// time.thread_time() reads); elsewhere wall time, which is the same on an idle core.
/// </summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    public static TimeSpan Now()
    {
        if (OperatingSystem.IsLinux() && clock_gettime(ClockThreadCpuTimeId, out var t) == 0)
            return TimeSpan.FromTicks(t.Seconds * TimeSpan.TicksPerSecond + t.Nanoseconds / 100);
        return Stopwatch.GetElapsedTime(0);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int clock_gettime(int clock, out Timespec time);
}
