namespace Jobs.Benchmark;

public sealed record BenchmarkOptions(int Jobs, int LatencySamples, int BaselineLatencySamples, int Workers, int Concurrency, int SoakSeconds = 0, int SoakRate = 30, int ChaosSeconds = 0, int MapItems = 100_000, int ScalingJobs = 2000, string[]? Only = null, int FairMapItems = 1_000_000, int Backlog = 6000, bool Lines = false, double RttMs = 0, bool Hosts = false, int SkewSeconds = 0)
{
    /// <summary>
    /// --only issue24 (or --only lines): exactly the scenarios issue 24's lines are measured by, graphile-worker's
    /// among them, and one table of those lines with their targets instead of the scenario table.
    /// </summary>
    public static readonly string[] LineScenarios = ["single", "latency", "backlog", "map", "usermap", "cpu", "graphile"];

    /// <summary>Whether to run a scenario: all unless --only names some (single, latency, backlog, map, usermap, chunksize, fairness, cpu, pycpu, scaling, baseline, graphile).</summary>
    public bool Runs(string scenario) => Only is null || Only.Contains(scenario);

    public static BenchmarkOptions Parse(string[] args)
    {
        var o = new BenchmarkOptions(Jobs: 5000, LatencySamples: 1000, BaselineLatencySamples: 30, Workers: 2, Concurrency: 64);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (args[i] == "--hosts")
            {
                o = o with { Hosts = true };
                i--; // a flag: no value follows
                continue;
            }
            if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
            if (args[i] == "--only")
            {
                o = args[i + 1] is "issue24" or "lines" ? o with { Only = LineScenarios, Lines = true } : o with { Only = args[i + 1].Split(',') };
                continue;
            }
            if (args[i] == "--rtt")
            {
                o = o with { RttMs = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) };
                continue;
            }
            var value = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
            o = args[i] switch
            {
                "--jobs" => o with { Jobs = value },
                "--latency" => o with { LatencySamples = value },
                "--baseline-latency" => o with { BaselineLatencySamples = value },
                "--workers" => o with { Workers = value },
                "--concurrency" => o with { Concurrency = value },
                "--soak" => o with { SoakSeconds = value },
                "--map-items" => o with { MapItems = value },
                "--scaling-jobs" => o with { ScalingJobs = value },
                "--fair-map-items" => o with { FairMapItems = value },
                "--backlog" => o with { Backlog = value },
                "--soak-rate" => o with { SoakRate = value },
                "--chaos" => o with { ChaosSeconds = value },
                "--skew" => o with { SkewSeconds = value },
                _ => throw new ArgumentException($"unknown option {args[i]}; known: --only single,latency,backlog,map,usermap,chunksize,fairness,cpu,pycpu,scaling,baseline,graphile (or --only issue24: issue 24's lines) --jobs --latency --baseline-latency --workers --concurrency --backlog --map-items --fair-map-items --scaling-jobs --soak SECONDS --soak-rate JOBS_PER_S --chaos SECONDS --rtt MS (a delaying proxy between the processes and PostgreSQL) --hosts (the API and each worker on a host of its own: network namespaces, root only; with --chaos, random hosts partitioned too) --skew SECONDS (worker-1's clock that far ahead, worker-2's behind)"),
            };
        }
        return o;
    }
}
