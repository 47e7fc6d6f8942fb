using System.Diagnostics;
using Jobs.Benchmark;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;

// The benchmark program (not a test): every scenario side by side with its baseline, in one run, on a private
// PostgreSQL (fsync on); prints one table with the machine. See src/Jobs.Benchmark/README.md.
if (args is [BaselineScenario.WorkerMode]) return BaselineScenario.RunWorker();

var options = BenchmarkOptions.Parse(args);
Shutdown.Install();
const int PythonPrimesLimit = 4_000_000; // count_primes(4e6) takes ~50 ms in CPython here, like the cpu.spin scenario
// --hosts: PostgreSQL, the API and each worker on a host of its own (network namespaces; removed on exit, or by the
// next run). Made first, so that it is removed last, after PostgreSQL has stopped.
await using var hosts = options.Hosts
    ? Shutdown.Register(HostNetwork.Create(["db", "api", .. Enumerable.Range(1, Math.Max(options.Workers, ChaosScenario.Workers)).Select(i => $"worker-{i}")]))
    : null;
await using var postgres = Shutdown.Register(await LocalPostgres.StartAsync(
    Path.Combine(ProgramPaths.RepositoryRoot, ".data", "bench-postgres"), m => Console.Error.WriteLine(m),
    extraSettings: "-c shared_preload_libraries=pg_stat_statements", host: hosts?["db"]));
await postgres.EnsureDatabaseAsync("postgres");
BenchmarkLink.RttMs = options.RttMs;
BenchmarkLink.Hosts = hosts;
BenchmarkLink.SkewSeconds = options.SkewSeconds;
var machine = await Machine.DescribeAsync(postgres.ConnectionString("postgres")) + "\nlink:    " + await BenchmarkLink.DescribeAsync(postgres.ConnectionString("postgres"));
var command = $"dotnet run -c Release --project src/Jobs.Benchmark -- {string.Join(' ', args)}";
if (options.ChaosSeconds > 0)
{
    Console.WriteLine($"machine: {machine}\ncommand: {command}");
    return await ChaosScenario.RunAsync(postgres, options.ChaosSeconds, options.SoakRate);
}
if (options.SoakSeconds > 0)
{
    Console.WriteLine($"machine: {machine}\ncommand: {command}");
    await SoakScenario.RunAsync(postgres, options, options.SoakSeconds, options.SoakRate);
    return 0;
}

double pyWall = double.NaN, pyBaseline = double.NaN, workerRss = double.NaN, jobsPerSecond = double.NaN, submissionsPerSecond = double.NaN, mapSubmit = double.NaN, mapItems = double.NaN, cpuWall = double.NaN, python = double.NaN;
SqlCost sql = SqlCost.None;
Fairness fairSlow = Fairness.None, fairBig = Fairness.None;
double oneAcceptMs = double.NaN, oneItems = double.NaN, defaultItems = double.NaN, backlogPerSecond = double.NaN, userMapItems = double.NaN;
var cpuSpread = "";
Percentiles pickup = Percentiles.None, roundTrip = Percentiles.None;
await using (var jobs = await JobsSystem.StartAsync(postgres, "bench_jobs", options.Workers, options.Concurrency))
{
    if (options.Runs("single"))
    {
        Console.Error.WriteLine($"jobs: {options.Jobs} no-op jobs through REST ({options.Concurrency} concurrent clients)…");
        (jobsPerSecond, submissionsPerSecond, sql) = await JobsScenario.SingleJobsAsync(jobs, options.Jobs, options.Concurrency);
    }
    if (options.Runs("latency"))
    {
        Console.Error.WriteLine($"jobs: {options.LatencySamples} sequential submissions on an idle system…");
        (pickup, roundTrip) = await JobsScenario.LatencyAsync(jobs, options.LatencySamples);
    }
    if (options.Runs("backlog"))
    {
        Console.Error.WriteLine($"jobs: a backlog of {options.Backlog} no-op jobs through POST /jobs/batch…");
        (backlogPerSecond, _) = await JobsScenario.BacklogAsync(jobs, options.Backlog);
    }
    if (options.Runs("map"))
    {
        // Steady state, as a running service sees it: the first map after start pays for its code paths' first JIT and
        // PostgreSQL's cold pages (with dynamic PGO, before issue 15, ~4 of its ~11 core-seconds were the
        // ".NET Tiered Compilation" thread). That cold figure is printed on stderr; the table reports a map on the
        // warmed, settled system.
        var items = Enumerable.Range(0, options.MapItems).Cast<object>().ToArray();
        Console.Error.WriteLine($"jobs: map of {options.MapItems} math.square items, first after start (cold, not in the table)…");
        var (coldSubmit, coldItems, _) = await JobsScenario.MapAsync(jobs, "math.square", items);
        Console.Error.WriteLine($"  cold map: {coldSubmit:F0} items/s accepted, {coldItems:F0} items/s submit → last result");
        var (settled, busy) = await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
        Console.Error.WriteLine($"jobs: map of {options.MapItems} math.square items (machine settled after {settled.TotalSeconds:F1} s, {busy:F2} cores busy)…");
        (mapSubmit, mapItems, _) = await JobsScenario.MapAsync(jobs, "math.square", items);
    }
    if (options.Runs("usermap"))
    {
        // Warm as the map line is (after it, or after a cold map of its own), and on a settled machine.
        if (!options.Runs("map")) await JobsScenario.MapAsync(jobs, "math.square", Enumerable.Range(0, options.MapItems).Cast<object>().ToArray());
        var (settled, busy) = await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
        Console.Error.WriteLine($"jobs: map of {options.MapItems} math.square items as a user times it, through Jobs.Client (machine settled after {settled.TotalSeconds:F1} s, {busy:F2} cores busy)…");
        userMapItems = await JobsScenario.UserMapAsync(jobs, options.MapItems);
    }
    if (options.Runs("chunksize"))
    {
        // chunksize 1 is not a Hangfire job per item: quick chunks are carried in runs. Warmed by a small map; each
        // side the best of 3, alternating, each on a settled machine.
        const int ChunksizeItems = 10_000;
        var items = Enumerable.Range(0, ChunksizeItems).Cast<object>().ToArray();
        await JobsScenario.MapAsync(jobs, "math.square", [.. items.Take(1000)], chunksize: 1);
        for (var run = 1; run <= 3; run++)
        {
            await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
            Console.Error.WriteLine($"jobs: map of {ChunksizeItems} math.square items, default chunksize, run {run}…");
            var (_, byDefault, _) = await JobsScenario.MapAsync(jobs, "math.square", items);
            await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
            Console.Error.WriteLine($"jobs: map of {ChunksizeItems} math.square items, chunksize 1, run {run}…");
            var (accepted, one, _) = await JobsScenario.MapAsync(jobs, "math.square", items, chunksize: 1);
            defaultItems = double.IsNaN(defaultItems) ? byDefault : Math.Max(defaultItems, byDefault);
            oneItems = double.IsNaN(oneItems) ? one : Math.Max(oneItems, one);
            oneAcceptMs = double.IsNaN(oneAcceptMs) ? ChunksizeItems / accepted * 1000 : Math.Min(oneAcceptMs, ChunksizeItems / accepted * 1000);
        }
    }
    if (options.Runs("fairness"))
    {
        var slots = options.Workers * Environment.ProcessorCount;
        Console.Error.WriteLine($"fairness: lone math.square jobs while another client's map of {slots * 50} × time.sleep(0.5), chunksize 1, fills all {slots} slots…");
        fairSlow = await FairnessScenario.RunAsync(jobs, new { function = "time.sleep", items = Enumerable.Repeat(0.5, slots * 50), chunksize = 1 }, slots);
        Console.Error.WriteLine($"fairness: lone math.square jobs while another client's map of {options.FairMapItems} math.square items (default chunksize) runs…");
        fairBig = await FairnessScenario.RunAsync(jobs, new { function = "math.square", items = Enumerable.Range(0, options.FairMapItems) }, slots);
    }
    if (options.Runs("cpu"))
    {
        // Steady state: the path warmed by a small map first, and each run started on a quiet machine (the previous
        // scenario's aftermath — autovacuum after a 100,000-item map, tiered JIT — read as 30–50 % slower). Three runs
        // each side, alternating; the median is reported with the spread.
        await JobsScenario.MapAsync(jobs, "cpu.spin", Enumerable.Repeat((object)50, 16).ToArray());
        var (jobsRuns, poolRuns) = (new List<double>(), new List<double>());
        for (var run = 1; run <= 3; run++)
        {
            var (waited, busy) = await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
            Console.Error.WriteLine($"jobs: map of 200 × cpu.spin(50), run {run} (machine settled after {waited.TotalSeconds:F1} s, {busy:F2} cores busy)…");
            (_, _, var wall) = await JobsScenario.MapAsync(jobs, "cpu.spin", Enumerable.Repeat((object)50, 200).ToArray());
            jobsRuns.Add(wall.TotalSeconds);
            await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
            Console.Error.WriteLine($"python: multiprocessing.Pool(2).map over 200 × 50 ms spins, run {run}…");
            poolRuns.Add(PythonPool(200, 50, 2));
        }
        (cpuWall, python) = (Median(jobsRuns), Median(poolRuns));
        cpuSpread = $"{jobsRuns.Min():F2}–{jobsRuns.Max():F2} vs {poolRuns.Min():F2}–{poolRuns.Max():F2}";
    }
    if (options.Runs("pycpu"))
    {
        Console.Error.WriteLine($"jobs: map of 200 × py:pool_examples.count_primes({PythonPrimesLimit})…");
        (_, _, var wall) = await JobsScenario.MapAsync(jobs, "py:pool_examples.count_primes", Enumerable.Repeat((object)PythonPrimesLimit, 200).ToArray());
        pyWall = wall.TotalSeconds;
        Console.Error.WriteLine("python: multiprocessing.Pool(2).map(pool_examples.count_primes) over the same 200 items…");
        pyBaseline = RunPython("python_pool_baseline.py", $"200", $"{PythonPrimesLimit}", "2", Path.GetDirectoryName(JobsSystem.PythonExamples)!);
    }
    workerRss = jobs.Processes.Where(p => p.Name.StartsWith("worker", StringComparison.Ordinal)).Max(p => SoakScenario.Rss(p.Id));
}

var scaling = new Dictionary<int, double> { [1] = double.NaN, [2] = double.NaN, [4] = double.NaN };
foreach (var workers in options.Runs("scaling") ? new[] { 1, 2, 4 } : [])
{
    Console.Error.WriteLine($"scaling: {options.ScalingJobs} no-op jobs with {workers} worker process(es)…");
    await using var system = await JobsSystem.StartAsync(postgres, $"bench_scale_{workers}", workers, options.Concurrency);
    scaling[workers] = (await JobsScenario.SingleJobsAsync(system, options.ScalingJobs, options.Concurrency)).JobsPerSecond;
}

var baseline = options.Runs("baseline") ? await BaselineScenario.RunAsync(postgres, options) : Figures.None;
if (options.Runs("graphile"))
{
    // graphile-worker's side on a quiet machine too, not in the aftermath of the scenarios before it (autovacuum, writeback).
    var (settled, busy) = await CpuCensus.SettleAsync(TimeSpan.FromSeconds(30));
    Console.Error.WriteLine($"graphile: machine settled after {settled.TotalSeconds:F1} s, {busy:F2} cores busy");
}
var graphile = options.Runs("graphile") ? await GraphileScenario.RunAsync(postgres, options) : GraphileFigures.None;
var graphileSetup = graphile.Missing is { } missing ? $"graphile-worker not run: {missing}"
    : $"{graphile.Node}: concurrency {GraphileScenario.WorkerConcurrency}, {options.Concurrency} concurrent addJob callers sharing its default pg pool of {GraphileScenario.Pool}; its latencies are addJob call → task start / → job row gone (polled every 1 ms), on one Node clock";

static string Ratio(double a, double b) => double.IsNaN(a / b) ? "–" : $"{a / b:F1}×";
static string Rate(double a) => double.IsNaN(a) ? "–" : $"{a:F0}";
static string Faster(double other, double jobs) => double.IsNaN(other / jobs) ? "–" : other >= jobs ? $"{other / jobs:F1}× faster" : $"{jobs / other:F1}× slower";
Console.WriteLine($"""
    Jobs benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC
    machine: {machine}
    command: {command}
    setup:   {options.Workers} worker processes each side unless stated, default slots per process (Jobs: {Environment.ProcessorCount} = cores; Hangfire: {Math.Min(Environment.ProcessorCount * 5, 20)} = min(5 × cores, 20)); {options.Concurrency} concurrent submitters to Jobs, {Math.Min(options.Concurrency, BaselineScenario.MaxConcurrency)} to the baseline (more time out in Hangfire's client); {graphileSetup}
    sides:   Jobs = REST over HTTP into the API process, PostgreSQL, separate worker processes; bare Hangfire = in-process BackgroundJobClient, separate server processes; graphile-worker = direct SQL (add_job) from Node, adder and workers in one process, woken by LISTEN/NOTIFY

    """);
if (options.Lines)
{
    Console.WriteLine(new IssueLines(pickup, roundTrip, jobsPerSecond, submissionsPerSecond, backlogPerSecond, mapItems, userMapItems, cpuWall, python, graphile, options).Table());
    return 0;
}
Console.WriteLine($"""
    | scenario | Jobs | baseline | Jobs ÷ baseline | graphile-worker | Jobs ÷ graphile |
    |---|---:|---:|---:|---:|---:|
    | single no-op jobs end to end ({options.Jobs}), jobs/s — baseline: bare Hangfire.PostgreSql, defaults; graphile: single addJob calls | {jobsPerSecond:F0} | {baseline.JobsPerSecond:F0} | {Ratio(jobsPerSecond, baseline.JobsPerSecond)} | {Rate(graphile.Figures.JobsPerSecond)} | {Ratio(jobsPerSecond, graphile.Figures.JobsPerSecond)} |
    | accepted single submissions/s — Jobs: REST; baseline: in-process BackgroundJobClient; graphile: addJob (SQL) | {submissionsPerSecond:F0} | {baseline.SubmissionsPerSecond:F0} | {Ratio(submissionsPerSecond, baseline.SubmissionsPerSecond)} | {Rate(graphile.Figures.SubmissionsPerSecond)} | {Ratio(submissionsPerSecond, graphile.Figures.SubmissionsPerSecond)} |
    | SQL statements / commits per job (pg_stat_statements, pg_stat_database) | {sql} | {baseline.Sql} | | | |
    | idle enqueue→start p50 / p95 / p99, ms (n = {pickup.Count} / {baseline.Pickup.Count} / {graphile.Figures.Pickup.Count}) | {pickup} | {baseline.Pickup} | {Faster(baseline.Pickup.P50, pickup.P50)} | {graphile.Figures.Pickup} | {Faster(graphile.Figures.Pickup.P50, pickup.P50)} |
    | idle enqueue→result p50 / p95 / p99, ms | {roundTrip} | {baseline.RoundTrip} | {Faster(baseline.RoundTrip.P50, roundTrip.P50)} | {graphile.Figures.RoundTrip} | {Faster(graphile.Figures.RoundTrip.P50, roundTrip.P50)} |
    | backlog drain: {options.Backlog} no-op jobs through POST /jobs/batch (batches of 1,000 in turn), jobs/s first submit → all ended; graphile: one addJobs call, then concurrency {GraphileScenario.WorkerConcurrency}, jobs/s first task start → all ended | {backlogPerSecond:F0} | | | {Rate(graphile.BacklogPerSecond)} | {Ratio(backlogPerSecond, graphile.BacklogPerSecond)} |
    | graphile only: {options.Backlog} no-op jobs in one addJobs call, then concurrency {GraphileScenario.WorkerConcurrency} / {options.Workers * Environment.ProcessorCount} (= Jobs' slots): jobs/s (from the worker pool's start) | | | | {graphile.Bulk} | |
    | map of {options.MapItems} math.square (the second after start: warm, settled): items/s accepted by POST /maps | {mapSubmit:F0} | – (no map in Hangfire) | | | |
    | map of {options.MapItems} math.square: items/s, submit → last result | {mapItems:F0} | – | | | |
    | map of {options.MapItems} math.square as a user times it (Jobs.Client's MapAsync: POST /maps → every result read back and checked; the {(options.Runs("map") ? "third" : "second")} after start): items/s | {userMapItems:F0} | – | | | |
    | map of 10,000 math.square with chunksize 1 (best of 3): ms to accept / items/s submit → last result; baseline: the same map with the default chunksize, items/s | {oneAcceptMs:F0} ms / {oneItems:F0} | {defaultItems:F0} | {Ratio(oneItems, defaultItems)} | | |
    | fairness: a lone job's enqueue→start median / max, ms, while another client's map of {options.Workers * Environment.ProcessorCount * 50} × time.sleep(0.5), chunksize 1, fills every slot | {fairSlow} | | | | |
    | fairness: the same while another client's map of {options.FairMapItems} math.square (default chunksize) runs | {fairBig} | | | | |
    | 200 × 50 ms CPU spin, wall s, median of 3 (range {cpuSpread}) — Jobs map vs Python multiprocessing.Pool(2).map | {cpuWall:F2} | {python:F2} | {cpuWall / python:F2}× the time | | |
    | 200 × count_primes({PythonPrimesLimit}) of a Python module, wall s — Jobs map (python3 processes in the workers) vs multiprocessing.Pool(2).map | {pyWall:F2} | {pyBaseline:F2} | {pyWall / pyBaseline:F2}× the time | | |
    | worker process RSS after the scenarios above, MiB (the larger of the {options.Workers}) | {workerRss:F0} | | | | |
    | scaling, no-op jobs/s with 1 / 2 / 4 worker processes ({options.ScalingJobs} jobs each) | {scaling[1]:F0} / {scaling[2]:F0} / {scaling[4]:F0} | | | | |
    """);
return 0;

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static double PythonPool(int items, int milliseconds, int processes) => RunPython("pool_baseline.py", $"{items}", $"{milliseconds}", $"{processes}");

// Runs a baseline script beside the benchmark; it prints its wall time in seconds.
static double RunPython(string script, params string[] args)
{
    using var process = Process.Start(new ProcessStartInfo("python3", [Path.Combine(AppContext.BaseDirectory, script), .. args]) { RedirectStandardOutput = true })!;
    var output = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    return double.TryParse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture, out var seconds) ? seconds : double.NaN;
}
