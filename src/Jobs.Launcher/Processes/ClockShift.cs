using System.Diagnostics;

namespace Jobs.Launcher.Processes;

/// <summary>
/// A process whose wall clock is off: an <c>LD_PRELOAD</c> library (compiled here with gcc, once per run) that adds
/// <c>CLOCK_SHIFT_SECONDS</c> to <c>clock_gettime(CLOCK_REALTIME)</c>, <c>gettimeofday</c> and <c>time</c>, and leaves
/// the monotonic clocks alone — what a machine with a wrong clock looks like. (Debian's libfaketime shifts more than
/// that: under it every Npgsql read of .NET timed out at once.) For the fault tests and the benchmark's <c>--skew</c>; needs gcc.
/// </summary>
public static class ClockShift
{
    private const string Source = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset = 0;
static int (*real)(clockid_t, struct timespec *) = 0;

static void init(void)
{
    if (real) return;
    const char *s = getenv("CLOCK_SHIFT_SECONDS");
    offset = s ? atoll(s) : 0;
    real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    init();
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset;
    return r;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return r;
}

time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
""";

    private static readonly Lazy<string> Library = new(Build);

    /// <summary>The environment that runs a child process <paramref name="seconds"/> ahead (negative: behind).</summary>
    public static Dictionary<string, string?> By(int seconds) => new()
    {
        ["LD_PRELOAD"] = Library.Value,
        ["CLOCK_SHIFT_SECONDS"] = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string Build()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"jobs-clockshift-{Environment.ProcessId}");
        Directory.CreateDirectory(folder);
        var source = Path.Combine(folder, "clockshift.c");
        var library = Path.Combine(folder, "clockshift.so");
        File.WriteAllText(source, Source);
        using var gcc = Process.Start(new ProcessStartInfo("gcc", ["-shared", "-fPIC", "-O2", "-o", library, source, "-ldl"])
        {
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("gcc did not start (apt-get install gcc; .ci/run installs it)");
        var errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0) throw new InvalidOperationException($"gcc failed: {errors}");
        return library;
    }
}
