using System.Diagnostics;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// Every accepted job ends (issue 11): a fetched job nobody runs is given back, and lone jobs after a burst start at once.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class LivenessTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    [Fact]
    public async Task A_fetch_whose_holder_never_runs_the_job_is_reported_and_given_back()
    {
        // The shape of the leak seen in production: a fetched Hangfire job nobody runs, whose keep-alive (here played
        // by the test, with Hangfire.PostgreSql's own renewal statement) goes on for ever.
        var queue = SystemFixture.PrivateQueue();
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 9 }, queue });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id) is not null, "dispatched");
        var hangfireJobId = long.Parse((await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id))!);
        var fetchedAt = await Database.ScalarAsync<DateTime>("UPDATE hangfire.jobqueue SET fetchedat = now() WHERE jobid = $1 RETURNING fetchedat", hangfireJobId);
        using var stopZombie = new CancellationTokenSource();
        var zombie = Task.Run(async () =>
        {
            DateTime? last = fetchedAt;
            while (last is { } f && !stopZombie.IsCancellationRequested)
            {
                await Task.Delay(500);
                last = await Database.ScalarAsync<DateTime?>(
                    "UPDATE hangfire.jobqueue SET fetchedat = now() WHERE jobid = $1 AND fetchedat = $2 RETURNING fetchedat", hangfireJobId, f);
            }
        });

        await using var worker = Fixture.StartWorker("liveness", [queue], environment: new() { ["Worker__InvariantBound"] = "00:00:03" });
        var clock = Stopwatch.StartNew();
        var job = await Http.WaitForJobAsync(id, 30);
        output.WriteLine($"ran {clock.Elapsed.TotalSeconds:F1} s after its worker started");
        stopZombie.Cancel();
        await zombie;

        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(81, job["result"]!.GetValue<double>());
        Assert.Contains(Fixture.Output, line => line.Contains("Invariant violated") && line.Contains(id.ToString()) && line.Contains("fetched but never started"));
    }

    [Fact]
    public async Task Lone_jobs_after_a_burst_each_start_within_two_seconds()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var a = Fixture.StartWorker("burst-a", [queue], workerCount: 2);
        await using var b = Fixture.StartWorker("burst-b", [queue], workerCount: 2);
        var burst = await Task.WhenAll(Enumerable.Range(0, 1000).Select(_ => Http.SubmitOkAsync(new { function = "noop", queue })));
        foreach (var id in burst.TakeLast(20))
            Assert.Equal("succeeded", (await Http.WaitForJobAsync(id, 60))["state"]!.GetValue<string>());
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.job WHERE queue = $1 AND state <> 'succeeded'", queue) == 0, "the burst ends", 60);

        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 100; i++)
        {
            var id = await Http.SubmitOkAsync(new { function = "noop", queue });
            var clock = Stopwatch.StartNew();
            var job = await Http.WaitForJobAsync(id, 10);
            Assert.True(job["state"]!.GetValue<string>() == "succeeded", $"lone job {i} after the burst: {job.Compact()}");
            if (clock.Elapsed > slowest) slowest = clock.Elapsed;
        }
        output.WriteLine($"slowest lone job: {slowest.TotalMilliseconds:F0} ms");
        Assert.True(slowest < TimeSpan.FromSeconds(2), $"slowest lone job took {slowest}");
    }

    [Fact]
    public async Task A_map_chunk_whose_hangfire_job_ended_without_its_outcome_is_run_again_by_the_invariant_watch()
    {
        // What a PostgreSQL outage longer than the workers' write patience leaves: the chunk's row says processing,
        // its Hangfire job has ended. Played here on a queue no worker serves yet.
        var queue = SystemFixture.PrivateQueue();
        var response = await Http.PostAsync("/maps", System.Net.Http.Json.JsonContent.Create(new { function = "math.square", items = new[] { 1, 2, 3 }, queue }));
        var id = (await response.JsonAsync())["id"]!.GetValue<Guid>();
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.map_chunk WHERE map_id = $1 AND chunk = 0", id) is not null, "dispatched");
        var hangfireJobId = long.Parse((await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.map_chunk WHERE map_id = $1 AND chunk = 0", id))!);
        // The chunk whose Hangfire job is played as ended (the others wait for their turn, or run as usual).
        await Database.ScalarAsync<int>("UPDATE jobs.map_chunk SET state = 'processing', attempts = 1, started_at = now() - interval '1 minute' WHERE map_id = $1 AND chunk = 0 RETURNING 1", id);
        await Database.ScalarAsync<int>("""
            WITH s AS (INSERT INTO hangfire.state (jobid, name, reason, createdat, data)
                       VALUES ($1, 'Succeeded', 'played by the test', now(), '{}') RETURNING id)
            UPDATE hangfire.job SET stateid = (SELECT id FROM s), statename = 'Succeeded' WHERE id = $1 RETURNING 1
            """, hangfireJobId);
        await Database.ScalarAsync<int>("DELETE FROM hangfire.jobqueue WHERE jobid = $1 RETURNING 1", hangfireJobId);

        await using var worker = Fixture.StartWorker("stranded-chunk", [queue], environment: new() { ["Worker__InvariantBound"] = "00:00:03" });
        var map = await (await Http.GetAsync($"/maps/{id}?wait=45")).JsonAsync();

        Assert.Equal("succeeded", map["state"]!.GetValue<string>());
        var results = await (await Http.GetAsync($"/maps/{id}/results?timeout=5")).JsonAsync();
        Assert.Equal("[1,4,9]", results["results"].Compact());
    }
}
