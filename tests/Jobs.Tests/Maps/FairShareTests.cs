using System.Diagnostics;
using System.Net;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Maps;

/// <summary>
/// One client's map cannot hold every worker slot until it is done: its chunks enter the queue through a window of
/// as many chunks as slots serve the queue, each next chunk behind whatever others queued meanwhile. Real API, real
/// workers on a queue of the test's own, so the slots counted are the ones the test started.
/// </summary>
public sealed class FairShareTests(SystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private async Task<(Guid Id, TimeSpan Took)> SubmitMapAsync(object body)
    {
        var (map, took) = await Http.SubmitMapAcceptedAsync(body);
        return (map["id"]!.GetValue<Guid>(), took);
    }

    private Task<(string Queue, ChildProcess Worker)> TwoSlotQueueAsync(string name) => Fixture.TwoSlotQueueAsync(name);

    private async Task WaitUntilStartedAsync(Guid mapId, int slots) =>
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND state = 'processing'", mapId) >= slots, "the map fills every slot");

    /// <summary>A lone job on the same queue: how long from its submission to its start (the job's own timestamps).</summary>
    private async Task<TimeSpan> LoneJobStartAsync(string queue)
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 3 }, queue });
        var job = await Http.WaitForJobAsync(id, 60);
        Assert.True(job["state"]!.GetValue<string>() == "succeeded", $"the lone job ended {job["state"]}: {job.Compact()}");
        return job["startedAt"].Time() - job["createdAt"].Time();
    }

    [Fact]
    public async Task A_lone_job_starts_within_about_one_item_while_another_clients_map_fills_every_slot()
    {
        var (queue, worker) = await TwoSlotQueueAsync("fair-share");
        await using var _ = worker;
        // 120 items of 0.5 s on 2 slots: 30 s of work queued ahead of anything submitted after it, were it all queued at once.
        var (mapId, _) = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(0.5, 120), chunksize = 1, queue });
        await WaitUntilStartedAsync(mapId, 2);

        var starts = new List<TimeSpan>();
        for (var i = 0; i < 5; i++) starts.Add(await LoneJobStartAsync(queue));
        output.WriteLine($"lone job start latency while the map fills both slots: {string.Join(", ", starts.Select(s => $"{s.TotalMilliseconds:F0} ms"))}");

        // A slot frees every ~0.25 s (two slots, 0.5-s items): a fair queue starts the lone job at the next one.
        Assert.All(starts, s => Assert.True(s < TimeSpan.FromSeconds(2), $"a lone job waited {s.TotalMilliseconds:F0} ms for a slot behind another client's map"));
        var map = await (await Http.GetAsync($"/maps/{mapId}")).JsonAsync();
        Assert.True(map["pending"]!.GetValue<int>() > 60, "the map was still running when the lone jobs had finished");
        Assert.Equal(HttpStatusCode.OK, (await Http.DeleteAsync($"/maps/{mapId}")).StatusCode);
    }

    [Fact]
    public async Task Two_maps_share_the_slots_instead_of_the_second_waiting_for_the_first()
    {
        var (queue, worker) = await TwoSlotQueueAsync("fair-maps");
        await using var _ = worker;
        var (first, _) = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(0.3, 100), chunksize = 1, queue });
        await WaitUntilStartedAsync(first, 2);
        var (second, _) = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(0.3, 10), chunksize = 1, queue });

        var done = await (await Http.GetAsync($"/maps/{second}?wait=20")).JsonAsync();

        // Sharing two slots with the first map, the second's 3 s of work take about 3 s; queued behind the first, 15 s.
        Assert.Equal("succeeded", done["state"]!.GetValue<string>());
        var firstMap = await (await Http.GetAsync($"/maps/{first}")).JsonAsync();
        output.WriteLine($"second map done while the first had {firstMap["pending"]} of 100 items left");
        Assert.True(firstMap["pending"]!.GetValue<int>() > 50, $"the second map finished only after the first had nearly done: {firstMap.Compact()}");
        Assert.Equal(HttpStatusCode.OK, (await Http.DeleteAsync($"/maps/{first}")).StatusCode);
    }

    [Fact]
    public async Task A_ten_thousand_chunk_map_is_accepted_at_once_canceled_within_a_second_and_frees_its_slots()
    {
        var (queue, worker) = await TwoSlotQueueAsync("cancel-big-map");
        await using var _ = worker;

        var (mapId, submitted) = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(300, 10_000), chunksize = 1, queue });
        output.WriteLine($"10,000 chunks accepted in {submitted.TotalMilliseconds:F0} ms");
        Assert.True(submitted < TimeSpan.FromSeconds(2), $"accepting a 10,000-chunk map took {submitted.TotalMilliseconds:F0} ms");
        await WaitUntilStartedAsync(mapId, 2);

        var clock = Stopwatch.StartNew();
        var response = await Http.DeleteAsync($"/maps/{mapId}");
        var canceled = clock.Elapsed;
        output.WriteLine($"DELETE answered in {canceled.TotalMilliseconds:F0} ms");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(canceled < TimeSpan.FromSeconds(1), $"DELETE of a 10,000-chunk map took {canceled.TotalMilliseconds:F0} ms");
        var view = await response.JsonAsync();
        Assert.Equal("canceled", view["state"]!.GetValue<string>());
        Assert.Equal(10_000, view["canceled"]!.GetValue<int>());

        // The two running 300-s sleeps stop on the cancel: the slots are free for the next job at once.
        var start = await LoneJobStartAsync(queue);
        output.WriteLine($"a job submitted right after the cancel started after {start.TotalMilliseconds:F0} ms");
        Assert.True(start < TimeSpan.FromSeconds(2.5), $"the slots were still held {start.TotalMilliseconds:F0} ms after the cancel");
        Assert.Equal(HttpStatusCode.FailedDependency, (await Http.GetAsync($"/maps/{mapId}/results")).StatusCode);
        // Its items are marked canceled right after the answer: every chunk ends, every item has its outcome.
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND state IN ('enqueued', 'processing')", mapId) == 0, "every chunk ended");
        Assert.Equal(10_000L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_result WHERE map_id = $1 AND state = 3", mapId));
    }
}
