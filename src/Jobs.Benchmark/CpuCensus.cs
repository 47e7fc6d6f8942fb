using System.Globalization;

namespace Jobs.Benchmark;

/// <summary>
/// Where CPU time went during a scenario, from /proc: every process on the machine (user + system time, plus what
/// children reaped meanwhile had used), grouped as the benchmark knows them (API, each worker, PostgreSQL backends,
/// python3, the benchmark itself, the rest), and inside the named processes, per thread name (.NET names its thread
/// pool, GC and timer threads; Hangfire names its workers and background processes).
/// </summary>
public sealed class CpuCensus
{
    private static readonly double Tick = 100.0; // USER_HZ: /proc reports CPU time in 1/100 s on Linux

    private readonly Dictionary<int, (string Comm, int Parent, double Seconds)> _processes;
    private readonly Dictionary<(int Pid, int Tid), (string Comm, double Seconds)> _threads;
    private readonly DateTime _at = DateTime.UtcNow;

    private CpuCensus(Dictionary<int, (string, int, double)> processes, Dictionary<(int, int), (string, double)> threads) =>
        (_processes, _threads) = (processes, threads);

    /// <summary>
    /// Waits until the machine is quiet — under 10 % of its cores busy over half a second — or <paramref name="limit"/>
    /// has passed (PostgreSQL's autovacuum after a big map, a checkpoint, tiered JIT): a CPU-bound scenario measured
    /// while the previous one's aftermath still runs reads slower than it is. Returns how long it waited and how busy
    /// the last half second was.
    /// </summary>
    public static async Task<(TimeSpan Waited, double BusyCores)> SettleAsync(TimeSpan limit)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double busy;
        do
        {
            var (busy0, total0) = MachineTicks();
            await Task.Delay(500);
            var (busy1, total1) = MachineTicks();
            busy = (busy1 - busy0) / Math.Max(1, total1 - total0) * Environment.ProcessorCount;
        } while (busy > 0.1 * Environment.ProcessorCount && clock.Elapsed < limit);
        return (clock.Elapsed, busy);
    }

    /// <summary>The postmaster of the cluster in <paramref name="dataDirectory"/> (its postmaster.pid), if it runs.</summary>
    public static int? Postmaster(string dataDirectory)
    {
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        try
        {
            return File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null; // restarting
        }
    }

    private static (double Busy, double Total) MachineTicks()
    {
        // /proc/stat's first line: cpu user nice system idle iowait irq softirq steal …
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]
            .Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var total = fields.Take(8).Sum();
        return (total - fields[3] - fields[4], total);
    }

    /// <summary>A snapshot of every process, and of the threads of <paramref name="named"/>.</summary>
    public static CpuCensus Take(IEnumerable<int> named)
    {
        var processes = new Dictionary<int, (string, int, double)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            if (Read($"{dir}/stat", withChildren: true) is { } p) processes[pid] = p;
        }
        var threads = new Dictionary<(int, int), (string, double)>();
        foreach (var pid in named)
        {
            if (!Directory.Exists($"/proc/{pid}/task")) continue;
            foreach (var dir in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                if (int.TryParse(Path.GetFileName(dir), out var tid) && Read($"{dir}/stat", withChildren: false) is { } t)
                    threads[(pid, tid)] = (t.Comm, t.Seconds);
        }
        return new CpuCensus(processes, threads);
    }

    private static (string Comm, int Parent, double Seconds)? Read(string path, bool withChildren)
    {
        try
        {
            var text = File.ReadAllText(path);
            var open = text.IndexOf('(');
            var close = text.LastIndexOf(')');
            var fields = text[(close + 2)..].Split(' ');
            // After the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
            double F(int i) => double.Parse(fields[i], CultureInfo.InvariantCulture) / Tick;
            var seconds = F(11) + F(12) + (withChildren ? F(13) + F(14) : 0);
            return (text[(open + 1)..close], int.Parse(fields[1], CultureInfo.InvariantCulture), seconds);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null; // gone meanwhile
        }
    }

    /// <summary>
    /// CPU seconds spent between <paramref name="before"/> and this snapshot, by group: the processes in
    /// <paramref name="labels"/> by their label, PostgreSQL, python3 and the rest by command name. Printed to stderr.
    /// </summary>
    public string Since(CpuCensus before, IReadOnlyDictionary<int, string> labels, int topThreads = 8)
    {
        var wall = (_at - before._at).TotalSeconds;
        var groups = new Dictionary<string, double>();
        foreach (var (pid, now) in _processes)
        {
            var then = before._processes.TryGetValue(pid, out var b) && b.Comm == now.Comm ? b.Seconds : 0;
            var used = now.Seconds - then;
            if (used <= 0) continue;
            var group = labels.TryGetValue(pid, out var label) ? label
                : labels.TryGetValue(now.Parent, out var parent) && now.Comm.StartsWith("python", StringComparison.Ordinal) ? $"python3 (of {parent})"
                // A labelled postmaster's backends (same command name) are its own, not another cluster's on a shared machine.
                : labels.TryGetValue(now.Parent, out parent) && _processes.TryGetValue(now.Parent, out var p) && p.Comm == now.Comm ? parent
                : now.Comm;
            groups[group] = groups.GetValueOrDefault(group) + used;
        }
        var total = groups.Values.Sum();
        var lines = new List<string> { $"  CPU census over {wall:F2} s wall ({Environment.ProcessorCount} cores = {wall * Environment.ProcessorCount:F2} core-s): {total:F2} core-s used" };
        lines.AddRange(groups.OrderByDescending(g => g.Value).Where(g => g.Value >= 0.01).Select(g => $"    {g.Value,7:F2} s  {g.Key}"));
        foreach (var (pid, label) in labels)
        {
            var threads = _threads.Where(t => t.Key.Pid == pid)
                .Select(t => (t.Value.Comm, Used: t.Value.Seconds - (before._threads.TryGetValue(t.Key, out var b) ? b.Seconds : 0)))
                .GroupBy(t => t.Comm).Select(g => (Comm: g.Key, Used: g.Sum(t => t.Used), Count: g.Count()))
                .Where(g => g.Used >= 0.01).OrderByDescending(g => g.Used).Take(topThreads).ToList();
            if (threads.Count > 0)
                lines.Add($"    {label} by thread name: " + string.Join(", ", threads.Select(t => $"{t.Comm} ×{t.Count} {t.Used:F2} s")));
        }
        return string.Join('\n', lines);
    }
}
