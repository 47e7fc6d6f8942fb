using System.Diagnostics;
using System.Net.Http.Json;
using Jobs.Core.SingleJobs;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.SingleJobs;

/// <summary>
/// Every accepted job ends (issue 11): results JSON cannot carry end the job failed with MaybeEncodingError, and
/// cancel ends a job wherever it is — waiting its turn in a batch, or orphaned by a worker that died.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class JobEndTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private async Task<string> StateAsync(Guid id) => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["state"]!.GetValue<string>();

    [Theory]
    [InlineData("math.pow", new object[] { -1, 0.5 }, "NaN")]
    [InlineData("math.square", new object[] { 1e200 }, "Infinity")]
    public async Task A_result_JSON_cannot_carry_fails_the_job_with_MaybeEncodingError(string function, object[] args, string named)
    {
        var id = await Http.SubmitOkAsync(new { function, args });
        var job = await Http.WaitForJobAsync(id, 20);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("MaybeEncodingError", job["error"]!["type"]!.GetValue<string>());
        Assert.Contains(named, job["error"]!["message"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        var result = await Http.GetAsync($"/jobs/{id}/result");
        Assert.Equal(424, (int)result.StatusCode);
    }

    [Fact]
    public async Task A_map_item_whose_result_JSON_cannot_carry_fails_alone()
    {
        var response = await Http.PostAsJsonAsync("/maps", new { function = "math.square", items = new object[] { 2, 1e200, 3 } });
        Assert.Equal(202, (int)response.StatusCode);
        var id = (await response.JsonAsync())["id"]!.GetValue<Guid>();
        var results = await Http.GetAsync($"/maps/{id}/results?timeout=20");
        var problem = await results.JsonAsync();

        Assert.Equal(424, (int)results.StatusCode);
        Assert.Equal(1, problem["index"]!.GetValue<int>());
        Assert.Contains("MaybeEncodingError", problem.Compact());
        var map = await (await Http.GetAsync($"/maps/{id}?wait=10")).JsonAsync();
        Assert.Equal(2, map["succeeded"]!.GetValue<int>());
        Assert.Equal(1, map["failed"]!.GetValue<int>());
    }

    [Fact]
    public async Task Canceling_a_batch_member_waiting_its_turn_ends_it_at_once()
    {
        var queue = SystemFixture.PrivateQueue();
        // Three submissions that arrived together: stored as the API's submitter stores a round, in one Hangfire job
        // (through the API, whether three concurrent requests share a round depends on their timing).
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(Database.ConnectionString);
        var round = await new JobSubmissionStore(dataSource, new JobQueries(dataSource), new Jobs.Core.Database.DatabaseClock(dataSource, Microsoft.Extensions.Logging.Abstractions.NullLogger<Jobs.Core.Database.DatabaseClock>.Instance))
            .InsertManyAsync([.. Enumerable.Range(0, 3).Select(_ => new NewJob("time.sleep", "[30]", "{}", queue))], maxBatch: 100, default);
        var ids = round.Select(j => j.Id).ToArray();
        var owners = round.Select(j => j.HangfireJobId).Distinct().Count();
        Assert.Equal(1, owners);
        await using var worker = Fixture.StartWorker("batch-wait", [queue], workerCount: 2, environment: new() { ["Worker__BatchSplitAfter"] = "00:01:00" });
        // The job that is claimed with the running one but waits behind it in the same Hangfire job.
        Guid waiter = default;
        await Eventually.TrueAsync(async () =>
        {
            var found = await Database.ScalarAsync<Guid?>("""
                SELECT w.id FROM jobs.job r JOIN jobs.job w ON w.hangfire_job_id = r.hangfire_job_id AND w.id <> r.id
                WHERE r.id = ANY($1) AND w.id = ANY($1) AND r.state = 'processing' AND w.state = 'processing'
                ORDER BY w.id DESC LIMIT 1
                """, ids);
            waiter = found ?? default;
            return found is not null;
        }, $"two jobs of one Hangfire job are claimed ({owners} Hangfire jobs for 3 submissions)");

        var clock = Stopwatch.StartNew();
        Assert.Equal(202, (int)(await Http.DeleteAsync($"/jobs/{waiter}")).StatusCode);
        var canceled = await Http.WaitForJobAsync(waiter, 10);
        output.WriteLine($"canceled in {clock.ElapsedMilliseconds} ms");

        Assert.Equal("canceled", canceled["state"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"canceled after {clock.Elapsed}");
        // The others end too before the worker is stopped: a worker that is stopping no longer checks for cancels
        // (CancelWatcher stops with the host), so a 30 s sleep still running would hold its stop for 10 s.
        foreach (var id in ids) await Http.DeleteAsync($"/jobs/{id}");
        foreach (var id in ids) await Http.WaitForJobAsync(id, 10);
    }

    [Fact]
    public async Task A_job_canceled_after_its_worker_died_ends_canceled()
    {
        var queue = SystemFixture.PrivateQueue();
        var victim = Fixture.StartWorker("cancel-victim", [queue]);
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 60 }, queue });
        await Eventually.TrueAsync(async () => await StateAsync(id) == "processing", "the job runs");
        victim.Kill();
        await victim.DisposeAsync();

        Assert.Equal(202, (int)(await Http.DeleteAsync($"/jobs/{id}")).StatusCode);
        // The dead worker's fetch comes back after the (shortened) invisibility timeout, as in the crash tests.
        await using var next = Fixture.StartWorker("cancel-next", [queue], environment: new() { ["Worker__InvisibilityTimeout"] = "00:00:02" });
        var job = await Http.WaitForJobAsync(id, 30);

        Assert.Equal("canceled", job["state"]!.GetValue<string>());
        Assert.Contains("canceled by request", job["error"]!["message"]!.GetValue<string>());
    }

    private async Task<string> HangfireJobIdAsync(Guid id)
    {
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id) is not null, "dispatched");
        return (await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id))!;
    }

    private Task<HttpResponseMessage> DashboardAsync(string action, string hangfireJobId) => DashboardActions.PostActionAsync(Http, action, hangfireJobId);

    [Fact]
    public async Task Deleting_a_delayed_jobs_Hangfire_job_in_the_dashboard_cancels_the_job()
    {
        var id = await Http.SubmitOkAsync(new { function = "noop", delaySeconds = 120 });
        var hangfireJobId = await HangfireJobIdAsync(id);

        var response = await DashboardAsync("scheduled/delete", hangfireJobId);

        Assert.True(response.IsSuccessStatusCode, $"dashboard answered {(int)response.StatusCode}");
        var job = await Http.WaitForJobAsync(id, 10);
        Assert.Equal("canceled", job["state"]!.GetValue<string>());
        Assert.Contains("dashboard", job["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Requeueing_a_failed_job_in_the_dashboard_runs_its_row_again()
    {
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "try me again" } });
        Assert.Equal("failed", (await Http.WaitForJobAsync(id, 20))["state"]!.GetValue<string>());
        var hangfireJobId = await HangfireJobIdAsync(id);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>(
            "SELECT statename FROM hangfire.job WHERE id = $1::bigint", hangfireJobId) == "Failed", "listed as failed", 10);

        var response = await DashboardAsync("failed/requeue", hangfireJobId);

        Assert.True(response.IsSuccessStatusCode, $"dashboard answered {(int)response.StatusCode}");
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<int>("SELECT attempts FROM jobs.job WHERE id = $1", id) == 2, "ran again", 20);
        var job = await Http.WaitForJobAsync(id, 20);
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("try me again", job["error"]!["message"]!.GetValue<string>());
    }
}
