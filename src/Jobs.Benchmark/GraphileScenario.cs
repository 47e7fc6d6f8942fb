using System.Diagnostics;
using System.Text.Json.Nodes;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;

namespace Jobs.Benchmark;

/// <summary>
/// graphile-worker's figures: the comparable ones (same definitions as Jobs'), its bulk runs, the rate it processes a
/// pre-added backlog at with concurrency <see cref="GraphileScenario.WorkerConcurrency"/> (from its first task's start to
/// the last job gone), and why there are none.
/// </summary>
public sealed record GraphileFigures(Figures Figures, string Bulk, double BacklogPerSecond, string Node, string? Missing)
{
    public static readonly GraphileFigures None = new(Figures.None, "–", double.NaN, "", null);
}

/// <summary>
/// A second baseline: graphile-worker 0.18 (Node) on the same PostgreSQL, as its README runs it — one process, jobs
/// added with direct SQL (addJob/addJobs), a worker pool woken by LISTEN/NOTIFY. The harness is graphile/bench.mjs
/// (its package.json and lockfile beside it); npm ci installs it in the source folder, so node_modules never reaches bin.
/// </summary>
public static class GraphileScenario
{
    /// <summary>graphile-worker's concurrency (its option; the default is 1, 10 is what its docs use for throughput).</summary>
    public const int WorkerConcurrency = 10;

    /// <summary>The pg pool the K callers share: graphile's default maxPoolSize (node-postgres' 10); 32 or 64 were slower here.</summary>
    public const int Pool = 10;

    public static string Folder => Path.Combine(ProgramPaths.RepositoryRoot, "src", "Jobs.Benchmark", "graphile");

    public static async Task<GraphileFigures> RunAsync(LocalPostgres postgres, BenchmarkOptions options)
    {
        if (FindOnPath("node") is not { } node) return Skip("node is not on PATH");
        if (FindOnPath("npm") is not { } npm) return Skip("npm is not on PATH");
        Console.Error.WriteLine($"graphile: npm ci in {Folder}…");
        var (npmExit, _) = await RunAsync(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], TimeSpan.FromMinutes(3));
        if (npmExit != 0) return Skip($"npm ci failed (exit {npmExit}; output above)");

        await postgres.EnsureDatabaseAsync("bench_graphile", recreate: true);
        var (exit, output) = await RunAsync(node, [Path.Combine(Folder, "bench.mjs"),
            "--connection", Url(BenchmarkLink.Through(postgres.ConnectionString("bench_graphile"))),
            "--jobs", $"{options.Jobs}", "--concurrency", $"{options.Concurrency}", "--pool", $"{Pool}",
            "--latency", $"{options.LatencySamples}", "--worker-concurrency", $"{WorkerConcurrency}", "--backlog", $"{options.Backlog}",
            "--slots", $"{options.Workers * Environment.ProcessorCount}"], TimeSpan.FromMinutes(4));
        if (exit != 0) return Skip($"bench.mjs failed (exit {exit}; output above)");
        var json = JsonNode.Parse(output)!;
        static double Number(JsonNode? n) => n?.GetValue<double>() ?? double.NaN;
        static Percentiles Of(JsonNode? n) => n is null ? Percentiles.None
            : new(Number(n["p50"]), Number(n["p95"]), Number(n["p99"]), n["count"]!.GetValue<int>());
        var bulk = json["bulk"]?.AsArray() ?? [];
        return new GraphileFigures(
            new Figures(Number(json["jobsPerSecond"]), Number(json["submissionsPerSecond"]), Of(json["pickup"]), Of(json["roundTrip"]), SqlCost.None),
            bulk.Count == 0 ? "–" : string.Join(" / ", bulk.Select(b => $"{Number(b!["jobsPerSecond"]):F0} ({Number(b!["processingJobsPerSecond"]):F0})")),
            Number(bulk.FirstOrDefault(b => Number(b!["concurrency"]) == WorkerConcurrency)?["drainJobsPerSecond"]),
            $"graphile-worker {json["version"]} on node {json["node"]}", null);
    }

    private static GraphileFigures Skip(string why)
    {
        Console.Error.WriteLine($"graphile: skipped — {why}");
        return GraphileFigures.None with { Missing = why };
    }

    /// <summary>node-postgres takes a URL; the benchmark's cluster is local, so host, port, user, password and database suffice.</summary>
    private static string Url(string connectionString)
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        return $"postgres://{Uri.EscapeDataString(b.Username!)}:{Uri.EscapeDataString(b.Password ?? "")}@{b.Host}:{b.Port}/{Uri.EscapeDataString(b.Database!)}";
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    /// <summary>Runs a program in <see cref="Folder"/>: stdout is returned, stderr goes to the benchmark's stderr.</summary>
    private static async Task<(int Exit, string Output)> RunAsync(string program, string[] args, TimeSpan timeout)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { WorkingDirectory = Folder, RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line) Console.Error.WriteLine($"  {line}");
        });
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Console.Error.WriteLine($"graphile: {Path.GetFileName(program)} still running after {timeout.TotalMinutes:0} min; killed");
            return (-1, "");
        }
        await errors;
        return (process.ExitCode, await output);
    }
}
