using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Maps;

/// <summary>
/// A map whose chunks enter the queue through a window still ends through the faults that break the hand-over of a
/// turn: a chunk given its turn whose Hangfire job was never created (its giver killed), and a worker killed with
/// chunks running while the rest wait for their turn.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class MapWindowFaultTests(FaultSystemFixture system) : SystemTest(system)
{
    private async Task<Guid> SubmitMapAsync(object body)
    {
        var response = await Http.PostAsync("/maps", System.Net.Http.Json.JsonContent.Create(body));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        return (await response.JsonAsync())["id"]!.GetValue<Guid>();
    }

    private async Task<string> ResultsAsync(Guid id)
    {
        var map = await (await Http.GetAsync($"/maps/{id}?wait=50")).JsonAsync();
        Assert.True(map["state"]!.GetValue<string>() == "succeeded", $"the map did not end: {map.Compact()}");
        return (await (await Http.GetAsync($"/maps/{id}/results?timeout=5")).JsonAsync())["results"].Compact();
    }

    [Fact]
    public async Task A_chunk_given_its_turn_whose_hangfire_job_was_never_created_is_dispatched_by_the_rescuer()
    {
        // Played on a queue no worker serves yet: the API gave the first chunks their turn; one of them loses its
        // Hangfire job, as if the process that gave the turn was killed between its commit and creating the job.
        var queue = SystemFixture.PrivateQueue();
        var id = await SubmitMapAsync(new { function = "math.square", items = Enumerable.Range(0, 6), chunksize = 1, queue });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.map_chunk WHERE map_id = $1 AND chunk = 1", id) is not null, "dispatched");
        var lost = long.Parse((await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.map_chunk WHERE map_id = $1 AND chunk = 1", id))!);
        await Database.ScalarAsync<int>("DELETE FROM hangfire.jobqueue WHERE jobid = $1 RETURNING 1", lost);
        await Database.ScalarAsync<int>("DELETE FROM hangfire.job WHERE id = $1 RETURNING 1", lost);
        await Database.ScalarAsync<int>("UPDATE jobs.map_chunk SET hangfire_job_id = NULL WHERE map_id = $1 AND chunk = 1 RETURNING 1", id);

        await using var worker = Fixture.StartWorker("lost-turn", [queue], workerCount: 2);

        Assert.Equal("[0,1,4,9,16,25]", await ResultsAsync(id));
    }

    [Fact]
    public async Task A_map_left_with_chunks_waiting_and_none_having_its_turn_is_refilled_by_the_rescuer()
    {
        // What no code path leaves (every chunk's end refills the window in its own transaction), played to prove the
        // repair: the first window's chunks ended, their Hangfire jobs gone, and no turn given on.
        var queue = SystemFixture.PrivateQueue();
        var id = await SubmitMapAsync(new { function = "math.square", items = Enumerable.Range(0, 6), chunksize = 1, queue });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND hangfire_job_id IS NOT NULL", id) > 0, "dispatched");
        var window = await Database.ScalarAsync<int>("SELECT dispatch_window FROM jobs.map WHERE id = $1", id);
        Assert.True(window < 6, $"the map's window ({window}) leaves chunks waiting");
        await Database.ScalarAsync<long>("""
            WITH gone AS (DELETE FROM hangfire.job WHERE id IN (SELECT hangfire_job_id::bigint FROM jobs.map_chunk WHERE map_id = $1 AND hangfire_job_id IS NOT NULL) RETURNING 1),
            items AS (INSERT INTO jobs.map_result (map_id, index, state, result) SELECT map_id, index, 1, to_json(index * index) FROM jobs.map_item WHERE map_id = $1 AND index < $2 RETURNING 1),
            chunks AS (UPDATE jobs.map_chunk SET state = 'done', finished_at = now() WHERE map_id = $1 AND chunk < $2 RETURNING 1)
            UPDATE jobs.map SET succeeded = (SELECT count(*) FROM items), state = 'processing' WHERE id = $1 RETURNING (SELECT count(*) FROM gone)
            """, id, window);

        await using var worker = Fixture.StartWorker("refill", [queue], workerCount: 2);

        Assert.Equal("[0,1,4,9,16,25]", await ResultsAsync(id));
    }

    [Fact]
    public async Task A_worker_killed_while_a_windowed_map_runs_leaves_no_chunk_behind()
    {
        var queue = SystemFixture.PrivateQueue();
        var victim = Fixture.StartWorker("map-victim", [queue], workerCount: 2);
        await using var survivor = Fixture.StartWorker("map-survivor", [queue], workerCount: 2);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM hangfire.server WHERE data::text LIKE '%' || $1 || '%'", queue) >= 2, "both workers serve the queue");
        var id = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(0.2, 60), chunksize = 1, queue });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND state = 'done'", id) >= 8, "the map is under way");

        victim.Kill();
        await victim.DisposeAsync();

        Assert.Equal($"[{string.Join(',', Enumerable.Repeat("0.2", 60))}]", await ResultsAsync(id));
        Assert.True(await Database.ScalarAsync<int>("SELECT dispatch_window FROM jobs.map WHERE id = $1", id) >= 4, "the window counted both workers' slots");
    }
}
