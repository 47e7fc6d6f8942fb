using System.Globalization;

namespace Jobs.Benchmark;

/// <summary>
/// Issue 24's lines (Deliver 4), measured in one run with graphile-worker's beside them: each line's Jobs figure, the
/// graphile-worker figure it is compared with, its target — worked out from the measured figures — and whether it was met.
/// Printed by <c>--only issue24</c> instead of the scenario table.
/// </summary>
public sealed record IssueLines(
    Percentiles Pickup, Percentiles RoundTrip, double JobsPerSecond, double SubmissionsPerSecond, double BacklogPerSecond,
    double MapItems, double UserMapItems, double CpuWall, double PoolWall, GraphileFigures Graphile, BenchmarkOptions Options)
{
    public string Table()
    {
        var g = Graphile.Figures;
        var slots = Options.Workers * Environment.ProcessorCount;
        var rows = new List<string>
        {
            "| line | Jobs | graphile-worker | target | met? |",
            "|---|---:|---:|---|---|",
            Row($"lone job, enqueue → start p50 / p95 / p99, ms (n = {Pickup.Count} / {g.Pickup.Count}; Jobs: the job row's createdAt → startedAt; graphile: addJob call → task start)",
                $"{Pickup}", $"{g.Pickup}",
                $"p50 ≤ graphile's ({Ms(g.Pickup.P50)}), p99 ≤ 2× graphile's ({Ms(2 * g.Pickup.P99)})",
                Met(Pickup.P50 <= g.Pickup.P50 && Pickup.P99 <= 2 * g.Pickup.P99, Pickup.P50, Pickup.P99, g.Pickup.P50, g.Pickup.P99)),
            Row("lone job, `POST /jobs?wait=30` round trip (HTTP, start, result) p50 / p95 / p99, ms — graphile has none: its addJob → job row gone (polled every 1 ms)",
                $"{RoundTrip}", $"{g.RoundTrip}", "p50 ≤ 4 ms", Met(RoundTrip.P50 <= 4, RoundTrip.P50)),
            Row($"single submissions end to end: {Options.Jobs} no-op jobs, one `POST /jobs` each from {Options.Concurrency} concurrent callers, first submit → all ended, jobs/s (accepted/s) — graphile: single addJob calls, end to end (adds/s)",
                $"{Rate(JobsPerSecond)} ({Rate(SubmissionsPerSecond)})", $"{Rate(g.JobsPerSecond)} ({Rate(g.SubmissionsPerSecond)})",
                $"≥ 2,000 and ≥ graphile's single-add rate ({Rate(g.SubmissionsPerSecond)})",
                Met(JobsPerSecond >= 2000 && JobsPerSecond >= g.SubmissionsPerSecond, JobsPerSecond, g.SubmissionsPerSecond)),
            Row($"backlog drain: {Options.Backlog} no-op jobs, jobs/s — Jobs: `POST /jobs/batch` (one client, batches of 1,000 in turn), first submit → all ended, {slots} slots; graphile: one addJobs call beforehand, then concurrency {GraphileScenario.WorkerConcurrency}, its first task's start → all ended (processing only)",
                Rate(BacklogPerSecond), Rate(Graphile.BacklogPerSecond), $"≥ 1.5× graphile's ({Rate(1.5 * Graphile.BacklogPerSecond)})",
                Met(BacklogPerSecond >= 1.5 * Graphile.BacklogPerSecond, BacklogPerSecond, Graphile.BacklogPerSecond)),
            Row($"map of {Options.MapItems:N0} `math.square`, items/s, the benchmark's line: `POST /maps` → `GET /maps/{{id}}/results?timeout=60` answered and parsed, the second map after start (warm, settled)",
                Rate(MapItems), "–", "≥ 75,000", Met(MapItems >= 75_000, MapItems)),
            Row($"map of {Options.MapItems:N0} `math.square`, items/s, as a user times it: Jobs.Client's `MapAsync` (`POST /maps` → every result read back through `GET /maps/{{id}}/results` and checked), the {(Options.Runs("map") ? "third" : "second")} map after start (warm, settled)",
                Rate(UserMapItems), "–", "≥ 50,000", Met(UserMapItems >= 50_000, UserMapItems)),
            Row("CPU-bound map: 200 × `cpu.spin(50)`, wall s, median of 3 — Jobs' map ÷ Python's multiprocessing.Pool(2).map",
                double.IsNaN(CpuWall / PoolWall) ? "–" : $"{CpuWall:F2} ÷ {PoolWall:F2} = {CpuWall / PoolWall:F2}×", "–", "≤ 1.10× Pool(2)",
                Met(CpuWall / PoolWall <= 1.10, CpuWall, PoolWall)),
        };
        return string.Join('\n', rows);
    }

    private static string Row(params string[] cells) => $"| {string.Join(" | ", cells)} |";

    private static string Rate(double value) => double.IsNaN(value) ? "–" : value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ms(double value) => double.IsNaN(value) ? "–" : value.ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>yes / no, or "not measured" when a figure it depends on is missing (a scenario left out, graphile-worker not run).</summary>
    private static string Met(bool met, params double[] figures) => figures.Any(double.IsNaN) ? "not measured" : met ? "yes" : "**no**";
}
