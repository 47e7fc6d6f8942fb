using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Jobs.Benchmark;

/// <summary>What one client's lone job waits for while another client's map runs.</summary>
public sealed record Fairness(double MedianMs, double MaxMs, int Samples, double CancelMs)
{
    public static readonly Fairness None = new(double.NaN, double.NaN, 0, double.NaN);

    public override string ToString() => Samples == 0 ? "–" : $"{MedianMs:F0} / {MaxMs:F0} (n = {Samples}); DELETE of the map {CancelMs:F0} ms";
}

/// <summary>
/// Fair share of the worker slots (issue 21): one client's map fills every slot, another client submits lone jobs one
/// after another (POST /jobs?wait, math.square); each lone job's start latency is its row's started_at − created_at.
/// Only lone jobs submitted while the map was still running count: once the map is done, any queue is fair.
/// Then the map is canceled and the DELETE timed.
/// </summary>
public static class FairnessScenario
{
    public const int MaxSamples = 20;

    public static async Task<Fairness> RunAsync(JobsSystem system, object mapBody, int busySlots)
    {
        var submit = Stopwatch.StartNew();
        using var response = await system.Http.PostAsJsonAsync("/maps", mapBody);
        var text = await response.Content.ReadAsStringAsync();
        if ((int)response.StatusCode != 202) throw new InvalidOperationException($"map refused: {(int)response.StatusCode} {text}");
        var mapId = JsonNode.Parse(text)!["id"]!.GetValue<Guid>();
        Console.Error.WriteLine($"  map accepted in {submit.Elapsed.TotalMilliseconds:F0} ms");
        await using (var running = system.Db.CreateCommand("SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND state = 'processing'"))
        {
            running.Parameters.Add(new() { Value = mapId });
            var deadline = Stopwatch.StartNew();
            while ((long)(await running.ExecuteScalarAsync())! < busySlots && deadline.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(20);
        }

        // Lone jobs are submitted one after another while the map runs: one submitted just before the map ended counts
        // (it waited behind the map), none after.
        var samples = new List<double>();
        while (samples.Count < MaxSamples && await RunningAsync(system, mapId)) samples.Add(await LoneJobAsync(system));
        var cancel = Stopwatch.StartNew();
        using (var deleted = await system.Http.DeleteAsync($"/maps/{mapId}"))
            Console.Error.WriteLine($"  DELETE /maps/{{id}}: {(int)deleted.StatusCode} after {cancel.Elapsed.TotalMilliseconds:F0} ms");
        var cancelMs = cancel.Elapsed.TotalMilliseconds;
        Console.Error.WriteLine($"  lone job start latencies, ms: {string.Join(", ", samples.Select(s => s.ToString("F0")))}");
        if (samples.Count == 0) return Fairness.None with { CancelMs = cancelMs };
        var sorted = samples.Order().ToArray();
        return new Fairness(sorted[(sorted.Length - 1) / 2], sorted[^1], sorted.Length, cancelMs);
    }

    private static async Task<bool> RunningAsync(JobsSystem system, Guid mapId)
    {
        await using var state = system.Db.CreateCommand("SELECT state IN ('enqueued', 'processing') FROM jobs.map WHERE id = $1");
        state.Parameters.Add(new() { Value = mapId });
        return (bool)(await state.ExecuteScalarAsync())!;
    }

    private static async Task<double> LoneJobAsync(JobsSystem system)
    {
        using var submitted = await system.Http.PostAsJsonAsync("/jobs?wait=60", new { function = "math.square", args = new[] { 3 } });
        var job = JsonNode.Parse(await submitted.Content.ReadAsStringAsync())!;
        var id = job["id"]!.GetValue<Guid>();
        while (!job["ready"]!.GetValue<bool>())
            job = JsonNode.Parse(await (await system.Http.GetAsync($"/jobs/{id}?wait=60")).Content.ReadAsStringAsync())!;
        return (job["startedAt"]!.GetValue<DateTime>() - job["createdAt"]!.GetValue<DateTime>()).TotalMilliseconds;
    }
}
