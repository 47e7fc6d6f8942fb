using Jobs.Benchmark;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;

// The benchmark program (not a test): Jobs against bare Hangfire.PostgreSql with default options, in the same
// run, on a private PostgreSQL; prints one table with the machine. See README "Performance".
if (args is [BaselineScenario.WorkerMode]) return BaselineScenario.RunWorker();

var options = BenchmarkOptions.Parse(args);
await using var postgres = await LocalPostgres.StartAsync(
    Path.Combine(ProgramPaths.RepositoryRoot, ".data", "bench-postgres"), m => Console.Error.WriteLine(m));
await postgres.EnsureDatabaseAsync("postgres");
if (options.SoakSeconds > 0)
{
    Console.WriteLine($"machine: {await Machine.DescribeAsync(postgres.ConnectionString("postgres"))}");
    Console.WriteLine($"command: dotnet run -c Release --project src/Jobs.Benchmark -- {string.Join(' ', args)}");
    await SoakScenario.RunAsync(postgres, options, options.SoakSeconds, options.SoakRate);
    return 0;
}

var machine = await Machine.DescribeAsync(postgres.ConnectionString("postgres"));
var jobs = await JobsScenario.RunAsync(postgres, options);
var baseline = await BaselineScenario.RunAsync(postgres, options);

Console.WriteLine($"""
    Jobs benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC
    machine: {machine}
    command: dotnet run -c Release --project src/Jobs.Benchmark -- {string.Join(' ', args)}
    setup:   {options.Workers} worker processes each side, default slots per process (Jobs: {Environment.ProcessorCount} = cores; Hangfire: {Math.Min(Environment.ProcessorCount * 5, 20)} = min(5 × cores, 20)); {options.Concurrency} concurrent submitters

    | scenario | Jobs | bare Hangfire.PostgreSql (defaults) | Jobs ÷ baseline |
    |---|---:|---:|---:|
    | single no-op jobs end to end ({options.Jobs}), jobs/s | {jobs.JobsPerSecond:F0} | {baseline.JobsPerSecond:F0} | {jobs.JobsPerSecond / baseline.JobsPerSecond:F1}× |
    | accepted submissions/s (Jobs: REST; baseline: in-process client) | {jobs.SubmissionsPerSecond:F0} | {baseline.SubmissionsPerSecond:F0} | {jobs.SubmissionsPerSecond / baseline.SubmissionsPerSecond:F1}× |
    | idle enqueue→start p50 / p95 / p99, ms (n = {jobs.Pickup.Count} / {baseline.Pickup.Count}) | {jobs.Pickup} | {baseline.Pickup} | {baseline.Pickup.P50 / jobs.Pickup.P50:F0}× faster |
    | idle enqueue→result p50 / p95 / p99, ms | {jobs.RoundTrip} | {baseline.RoundTrip} | {baseline.RoundTrip.P50 / jobs.RoundTrip.P50:F0}× faster |
    """);
return 0;
