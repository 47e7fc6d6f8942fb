using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Jobs.Benchmark;

public static class JobsScenario
{
    private const int Warmup = 2000;

    /// <summary>The processes a CPU census names: the system's and this benchmark's own.</summary>
    private static Dictionary<int, string> CensusLabels(JobsSystem system)
    {
        var labels = system.Processes.ToDictionary(p => p.Id, p => p.Name);
        labels[Environment.ProcessId] = "benchmark";
        if (CpuCensus.Postmaster(system.PostgresDataDirectory) is { } postmaster) labels[postmaster] = "postgres (the benchmark's cluster)";
        return labels;
    }

    /// <summary>N no-op jobs through REST with <paramref name="concurrency"/> concurrent clients: jobs/s end to end, submissions/s, SQL per job.</summary>
    public static async Task<(double JobsPerSecond, double SubmissionsPerSecond, SqlCost Sql)> SingleJobsAsync(JobsSystem system, int jobs, int concurrency)
    {
        // Warm-up (JIT, tiered compilation, pools) long enough that the measurement is of steady state.
        await SubmitManyAsync(system.Http, Warmup, concurrency);
        await WaitForSucceededAsync(system.Db, Warmup);
        await SqlCost.ResetAsync(system.Db);
        // Where the CPU goes while submissions are accepted and run (what bounds both rates on a small machine).
        var labels = CensusLabels(system);
        var census = CpuCensus.Take(labels.Keys);
        var clock = Stopwatch.StartNew();
        await SubmitManyAsync(system.Http, jobs, concurrency);
        var submitted = clock.Elapsed;
        await WaitForSucceededAsync(system.Db, Warmup + jobs);
        var done = clock.Elapsed;
        Console.Error.WriteLine($"  {jobs} single jobs: accepted in {submitted.TotalSeconds:F2} s, all succeeded after {done.TotalSeconds:F2} s");
        Console.Error.WriteLine(CpuCensus.Take(labels.Keys).Since(census, labels));
        return (jobs / done.TotalSeconds, jobs / submitted.TotalSeconds, await SqlCost.MeasureAsync(system.Db, jobs));
    }

    /// <summary>Sequential submissions on an idle system: enqueue→start (database clock) and submit→result (client clock), ms.</summary>
    public static async Task<(Percentiles Pickup, Percentiles RoundTrip)> LatencyAsync(JobsSystem system, int samples)
    {
        var pickup = new List<double>();
        var roundTrip = new List<double>();
        // Where the ?wait round trip goes, on the machine's one clock (the client's and PostgreSQL's now()): POST sent →
        // row created, → started, → finished, → the finished job back at the client.
        var (toCreated, toFinished, toAnswer) = (new List<double>(), new List<double>(), new List<double>());
        // Every statement the idle path runs, per job (printed with the census): the round trips from POST to start.
        await SqlCost.ResetAsync(system.Db);
        for (var i = 0; i < samples; i++)
        {
            var sent = DateTime.UtcNow;
            var sample = Stopwatch.StartNew();
            var response = await system.Http.PostAsJsonAsync("/jobs?wait=30", new { function = "noop" });
            var job = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            while (job["finishedAt"] is null)
            {
                if (sample.Elapsed > JobsSystem.StuckAfter)
                    await Shutdown.FailAsync($"latency sample {i} not finished after {sample.Elapsed.TotalSeconds:0} s: {job.ToJsonString()}");
                // Not finished within the wait (or refused): say so, and keep waiting, so the outlier is measured, not hidden.
                Console.Error.WriteLine($"latency sample {i}: {(int)response.StatusCode} after {sample.ElapsedMilliseconds} ms: {job.ToJsonString()[..Math.Min(300, job.ToJsonString().Length)]}");
                if (job["id"] is null) throw new InvalidOperationException("submission refused");
                response = await system.Http.GetAsync($"/jobs/{job["id"]}?wait=30");
                job = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            }
            roundTrip.Add(sample.Elapsed.TotalMilliseconds);
            var (created, started, finished) = (At(job, "createdAt"), At(job, "startedAt"), At(job, "finishedAt"));
            pickup.Add((started - created).TotalMilliseconds);
            toCreated.Add((created - sent).TotalMilliseconds);
            toFinished.Add((finished - started).TotalMilliseconds);
            toAnswer.Add((sent + sample.Elapsed - finished).TotalMilliseconds);
        }
        var sql = await SqlCost.MeasureAsync(system.Db, samples);
        Console.Error.WriteLine($"  idle path: {sql} statements / commits per job (background pollers included)");
        Console.Error.WriteLine($"  ?wait round trip p50 / p95 / p99, ms: POST → row created {Percentiles.Of(toCreated)}, → started {Percentiles.Of(pickup)}, → finished {Percentiles.Of(toFinished)}, → answer at the client {Percentiles.Of(toAnswer)}; whole {Percentiles.Of(roundTrip)}");
        return (Percentiles.Of(pickup), Percentiles.Of(roundTrip));
    }

    /// <summary>
    /// A backlog drained: <paramref name="jobs"/> no-op jobs sent by one client through POST /jobs/batch, batches of
    /// <see cref="BatchSize"/> one after another: jobs/s from the first submit to the last job ended, and jobs/s accepted.
    /// </summary>
    public static async Task<(double JobsPerSecond, double SubmissionsPerSecond)> BacklogAsync(JobsSystem system, int jobs)
    {
        // The batch path warmed (its JIT, the pools) by one batch, so the measurement is of steady state.
        var before = await SucceededAsync(system.Db) + await SubmitBatchesAsync(system.Http, BatchSize);
        await WaitForSucceededAsync(system.Db, before);
        var labels = CensusLabels(system);
        var census = CpuCensus.Take(labels.Keys);
        var clock = Stopwatch.StartNew();
        await SubmitBatchesAsync(system.Http, jobs);
        var submitted = clock.Elapsed;
        await WaitForSucceededAsync(system.Db, before + jobs);
        var done = clock.Elapsed;
        Console.Error.WriteLine($"  backlog of {jobs}: accepted in {submitted.TotalSeconds:F2} s ({(jobs + BatchSize - 1) / BatchSize} batches), all ended after {done.TotalSeconds:F2} s");
        Console.Error.WriteLine(CpuCensus.Take(labels.Keys).Since(census, labels));
        return (jobs / done.TotalSeconds, jobs / submitted.TotalSeconds);
    }

    /// <summary>The most jobs a POST /jobs/batch takes (JobWriteEndpoints.MaxBatch).</summary>
    private const int BatchSize = 1000;

    /// <summary>Sends <paramref name="count"/> no-op jobs in batches, one request after another; each must be stored whole.</summary>
    private static async Task<int> SubmitBatchesAsync(HttpClient http, int count)
    {
        for (var sent = 0; sent < count; sent += BatchSize)
        {
            var size = Math.Min(BatchSize, count - sent);
            using var response = await http.PostAsJsonAsync("/jobs/batch", new { jobs = Enumerable.Repeat(new { function = "noop" }, size) });
            var body = await response.Content.ReadAsStringAsync();
            var stored = (int)response.StatusCode == 200 ? JsonNode.Parse(body)!["jobs"]!.AsArray().Count(j => j?["job"] is JsonObject) : 0;
            if (stored != size) throw new InvalidOperationException($"batch of {size} refused ({stored} stored): {(int)response.StatusCode} {body[..Math.Min(500, body.Length)]}");
        }
        return count;
    }

    /// <summary>
    /// A map as its user times it: <see cref="Jobs.Client.JobsClient.MapAsync"/> (the service's .NET client: POST /maps,
    /// then GET /maps/{id}/results until every result is back, in input order), each result checked: items/s.
    /// </summary>
    public static async Task<double> UserMapAsync(JobsSystem system, int count)
    {
        var client = new Jobs.Client.JobsClient(system.Http);
        var labels = CensusLabels(system);
        var census = CpuCensus.Take(labels.Keys);
        var clock = Stopwatch.StartNew();
        var results = await client.MapAsync<long>("math.square", Enumerable.Range(0, count).Select(i => (object?)i));
        var wall = clock.Elapsed;
        if (results.Count != count) throw new InvalidOperationException($"map returned {results.Count} of {count} results");
        if (Enumerable.Range(0, count).FirstOrDefault(i => results[i] != (long)i * i, -1) is var wrong and >= 0)
            throw new InvalidOperationException($"map result {wrong} is {results[wrong]}, not {(long)wrong * wrong}");
        Console.Error.WriteLine($"  map math.square as a user times it: every result back after {wall.TotalSeconds:F2} s");
        Console.Error.WriteLine(CpuCensus.Take(labels.Keys).Since(census, labels));
        return count / wall.TotalSeconds;
    }

    private static DateTime At(JsonNode job, string field) => job[field]!.GetValue<DateTime>().ToUniversalTime();

    /// <summary>A map of <paramref name="items"/> items: items/s accepted by POST /maps, and items/s from submit to the last result.</summary>
    public static async Task<(double SubmitItemsPerSecond, double ItemsPerSecond, TimeSpan Wall)> MapAsync(JobsSystem system, string function, object[] items, int? chunksize = null)
    {
        var labels = CensusLabels(system);
        var census = CpuCensus.Take(labels.Keys);
        var clock = Stopwatch.StartNew();
        var response = await system.Http.PostAsJsonAsync("/maps", new { function, items, star = false, chunksize });
        var submitted = clock.Elapsed;
        var id = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
        while (true)
        {
            using var results = await system.Http.GetAsync($"/maps/{id}/results?timeout=60");
            if ((int)results.StatusCode == 200)
            {
                var count = JsonNode.Parse(await results.Content.ReadAsStringAsync())!["results"]!.AsArray().Count;
                if (count != items.Length) throw new InvalidOperationException($"map returned {count} of {items.Length} results");
                break;
            }
            if ((int)results.StatusCode != 202) throw new InvalidOperationException($"map failed: {await results.Content.ReadAsStringAsync()}");
        }
        await using (var ran = system.Db.CreateCommand("SELECT extract(epoch FROM finished_at - created_at)::float8 FROM jobs.map WHERE id = $1"))
        {
            ran.Parameters.Add(new() { Value = id });
            Console.Error.WriteLine($"  map {function}: submitted in {submitted.TotalSeconds:F2} s, finished in the database after {(double)(await ran.ExecuteScalarAsync())!:F2} s, results read after {clock.Elapsed.TotalSeconds:F2} s");
        }
        Console.Error.WriteLine(CpuCensus.Take(labels.Keys).Since(census, labels));
        return (items.Length / submitted.TotalSeconds, items.Length / clock.Elapsed.TotalSeconds, clock.Elapsed);
    }

    private static async Task SubmitManyAsync(HttpClient http, int count, int concurrency) =>
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (_, ct) =>
        {
            using var response = await http.PostAsJsonAsync("/jobs", new { function = "noop" }, ct);
            if ((int)response.StatusCode != 202)
                throw new InvalidOperationException($"submission refused: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        });

    private static async Task<int> SucceededAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM jobs.job WHERE state = 'succeeded'");
        return (int)(long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task WaitForSucceededAsync(NpgsqlDataSource db, int count)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM jobs.job WHERE state = 'succeeded'");
        var (last, since) = (-1L, Stopwatch.StartNew());
        for (long done; (done = (long)(await cmd.ExecuteScalarAsync())!) < count; await Task.Delay(20))
        {
            if (done != last) (last, since) = (done, Stopwatch.StartNew());
            else if (since.Elapsed > TimeSpan.FromSeconds(60))
                throw new TimeoutException($"no job finished for 60 s: {done} of {count} succeeded");
        }
    }

    internal static void Quiet(string line)
    {
        if (line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal)) Console.Error.WriteLine(line);
    }
}
