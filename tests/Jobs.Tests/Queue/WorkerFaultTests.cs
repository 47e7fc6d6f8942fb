using System.Diagnostics;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>kill -9 of a worker, a job that kills its worker, and SIGTERM: nothing accepted is lost.</summary>
[Collection(FaultSystemCollection.Name)]
public sealed class WorkerFaultTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private static string ServerName(Jobs.Launcher.Processes.ChildProcess worker) => $"{Environment.MachineName}:{worker.Id}";

    private async Task<string> StateAsync(Guid id) => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["state"]!.GetValue<string>();

    [Fact]
    public async Task Killed_workers_jobs_are_run_again_by_another_worker_within_ten_seconds()
    {
        var queue = SystemFixture.PrivateQueue();
        var victim = Fixture.StartWorker("victim", [queue], workerCount: 2);
        await using var survivor = Fixture.StartWorker("survivor", [queue], workerCount: 2);
        var ids = new List<Guid>();
        for (var i = 0; i < 30; i++) ids.Add(await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 1.0 }, queue }));

        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.job WHERE worker ILIKE $1 || '%' AND state = 'processing'", ServerName(victim)) > 0, "the victim is running a job");
        var inFlight = await Database.ScalarAsync<Guid[]>(
            "SELECT array_agg(id) FROM jobs.job WHERE worker ILIKE $1 || '%' AND state = 'processing'", ServerName(victim));
        victim.Kill();
        var killedAt = DateTime.UtcNow;
        await victim.DisposeAsync();

        foreach (var id in ids)
            Assert.Equal("succeeded", (await Http.WaitForJobAsync(id, 60))["state"]!.GetValue<string>());
        foreach (var id in inFlight!)
        {
            var job = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
            var rerunAfter = job["startedAt"].Time() - killedAt;
            output.WriteLine($"job {id} re-run {rerunAfter.TotalSeconds:F1} s after the kill");
            Assert.Equal(2, job["attempts"]!.GetValue<int>());
            Assert.True(rerunAfter < TimeSpan.FromSeconds(10), $"re-run {rerunAfter.TotalSeconds:F1} s after the kill");
        }
    }

    [Fact]
    public async Task Job_that_kills_its_worker_is_quarantined_after_three_crashes_and_three_attempts()
    {
        var queue = SystemFixture.PrivateQueue();
        var id = await Http.SubmitOkAsync(new { function = "debug.crash", queue });

        var crashes = 0;
        var clock = Stopwatch.StartNew();
        while (await StateAsync(id) != "failed")
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), "the job should be quarantined");
            // A fresh worker each time, as the launcher would restart it; the dead worker's job comes back after
            // the (shortened) invisibility timeout.
            await using var worker = Fixture.StartWorker($"crash-{crashes}", [queue], environment: new() { ["Worker__InvisibilityTimeout"] = "00:00:02" });
            var exited = worker.WaitForExitAsync();
            var failed = Eventually.TrueAsync(async () => await StateAsync(id) == "failed", "quarantined", 30);
            if (await Task.WhenAny(exited, failed) == exited) crashes++;
        }

        var job = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
        Assert.Equal(3, crashes);
        Assert.Equal("Jobs.Core.Execution.WorkerCrashedException", job["error"]!["type"]!.GetValue<string>());
        Assert.Contains("died while running it 3 times", job["error"]!["message"]!.GetValue<string>());
        // The function ran 3 times; the pass that quarantined it ran nothing and is not an attempt.
        Assert.Equal(3, job["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task Sigterm_lets_the_running_job_finish_and_leaves_queued_jobs_for_the_next_worker()
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = Fixture.StartWorker("graceful", [queue], workerCount: 1, environment: new() { ["Worker__ShutdownTimeout"] = "00:00:10" });
        var running = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 2.0 }, queue });
        var queued = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 12 }, queue });
        await Eventually.TrueAsync(async () => await StateAsync(running) == "processing", "the first job runs");

        await worker.StopAsync(TimeSpan.FromSeconds(30)); // SIGTERM, then wait

        Assert.True(worker.HasExited);
        Assert.Equal(0, worker.ExitCode);
        Assert.Equal("succeeded", await StateAsync(running));
        Assert.Equal("enqueued", await StateAsync(queued));
        await using var next = Fixture.StartWorker("next", [queue]);
        Assert.Equal(144, (await Http.WaitForJobAsync(queued, 60))["result"]!.GetValue<double>());
    }

    [Fact]
    public async Task Sigterm_hands_back_a_job_that_outlives_the_shutdown_timeout_without_counting_a_crash()
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = Fixture.StartWorker("impatient", [queue], workerCount: 1, environment: new() { ["Worker__ShutdownTimeout"] = "00:00:01" });
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 4.0 }, queue });
        await Eventually.TrueAsync(async () => await StateAsync(id) == "processing", "the job runs");

        var clock = Stopwatch.StartNew();
        await worker.StopAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"worker stopped in {clock.ElapsedMilliseconds} ms");

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"stopping took {clock.Elapsed}");
        Assert.Equal("enqueued", await StateAsync(id));
        await using var next = Fixture.StartWorker("after-impatient", [queue]);
        var job = await Http.WaitForJobAsync(id, 60);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(2, job["attempts"]!.GetValue<int>());
        Assert.Equal(0, await Database.ScalarAsync<int>("SELECT crashes FROM jobs.job WHERE id = $1", id));
        await worker.DisposeAsync();
    }
}
