using System.Net;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Security;

/// <summary>
/// Issue 21's smaller attacks, each failing on main before its fix: queues a client makes up (work nothing would run,
/// and a /metrics series, a /pool row and a dashboard row per name), dashboard pages for ids that are not Hangfire
/// job ids (500 with a logged stack trace), a host-only callback allowlist entry that opened every port of the host (a
/// port scanner reporting "Connection refused"), and a schedule that can never fire.
/// </summary>
public sealed class SharedServiceTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task A_queue_no_worker_serves_and_none_declares_is_refused_everywhere_work_is_written_naming_the_known_ones()
    {
        const string made_up = "nobody_serves_this";
        foreach (var (path, body) in new[]
                 {
                     ("/jobs", $$"""{"function":"math.square","args":[2],"queue":"{{made_up}}"}"""),
                     ("/maps", $$"""{"function":"math.square","items":[1,2],"queue":"{{made_up}}"}"""),
                     ("/schedules", $$"""{"name":"made-up-queue","cron":"* * * * *","function":"noop","queue":"{{made_up}}"}"""),
                 })
        {
            var response = await Http.PostRawAsync(path, body);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            var problem = await response.JsonAsync();
            Assert.Equal("Unknown queue", problem["title"]!.GetValue<string>());
            Assert.True(problem["errors"]!.AsObject().ContainsKey("queue"));
            var detail = problem["detail"]!.GetValue<string>();
            Assert.Contains(made_up, detail);
            Assert.Contains("default", detail); // the known ones are named
            Assert.Contains("Jobs:Queues", detail);
        }

        // A batch naming thousands of queues stores none of them, and no page or series grows a row per name.
        var metricsBefore = await Http.GetStringAsync("/metrics");
        var batch = new JsonObject { ["jobs"] = new JsonArray([.. Enumerable.Range(0, 1000).Select(i => (JsonNode)new JsonObject { ["function"] = "noop", ["queue"] = $"spam_{i}" })]) };
        var answer = await (await Http.PostRawAsync("/jobs/batch", batch.ToJsonString())).JsonAsync();
        Assert.All(answer["jobs"]!.AsArray(), j => Assert.Equal(400, j!["problem"]!["status"]!.GetValue<int>()));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.DoesNotContain("spam_", await Http.GetStringAsync("/pool"));
        Assert.DoesNotContain("spam_", await Http.GetStringAsync("/metrics"));
        Assert.DoesNotContain("spam_", metricsBefore);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.schedule WHERE name = 'made-up-queue'"));
    }

    [Fact]
    public async Task A_queue_becomes_known_when_a_live_worker_serves_it_and_declared_ones_are_taken_before_any_worker_serves_them()
    {
        // Declared by the fixture's Jobs:Queues (t_*): accepted with no worker, and waits for one.
        var declared = SystemFixture.PrivateQueue();
        var waiting = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 4 }, queue = declared });

        // Not declared: refused until a worker serving it is live, then accepted and run.
        var served = "w_" + Guid.NewGuid().ToString("N")[..12];
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.SubmitAsync(new { function = "math.square", args = new[] { 5 }, queue = served })).StatusCode);
        await using var worker = Fixture.StartWorker("queue-worker", [served, declared]);
        await Eventually.TrueAsync(async () => (await Http.SubmitAsync(new { function = "noop", queue = served })).StatusCode == HttpStatusCode.Accepted,
            "the worker's queue is known once it is live", seconds: 30);
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 5 }, queue = served });
        Assert.Equal(25, (await Http.WaitForJobAsync(id))["result"]!.GetValue<int>());
        Assert.Equal(16, (await Http.WaitForJobAsync(waiting))["result"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0b4f2c9e-8f1d-4c57-9a51-3c2d0f5e6a7b")]
    [InlineData("99999999999999999999999")]
    [InlineData("-1")]
    [InlineData("123456789")]
    public async Task The_dashboard_answers_404_for_a_job_id_that_is_no_Hangfire_job(string id)
    {
        var page = await Http.GetAsync($"/hangfire/jobs/details/{id}");
        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"/hangfire/jobs/details/{id}/")).StatusCode);
        Assert.DoesNotContain(Fixture.Output, line => line.Contains("FormatException") || line.Contains("OverflowException"));
    }

    [Fact]
    public async Task The_dashboard_still_shows_a_real_jobs_page()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 6 } });
        await Http.WaitForJobAsync(id);
        var hangfireJobId = await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id);
        var page = await Http.GetAsync($"/hangfire/jobs/details/{hangfireJobId}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains(id.ToString(), await page.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_host_only_allowlist_entry_allows_the_schemes_default_port_only()
    {
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        await using var api = Fixture.StartApi("api-host-only-allowlist", url, new() { ["Callbacks__AllowedHosts__0"] = "localhost" });
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => "", TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = url };

        foreach (var probe in new[] { "http://localhost:5432/x", "http://localhost:22/", "https://localhost:8443/x", "http://localhost:80a/" })
        {
            var response = await http.SubmitAsync(new { function = "noop", callbackUrl = probe });
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{probe}: {(int)response.StatusCode}");
        }
        Assert.Equal(HttpStatusCode.Accepted, (await http.SubmitAsync(new { function = "noop", callbackUrl = "http://localhost/hook" })).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await http.SubmitAsync(new { function = "noop", callbackUrl = "https://localhost:443/hook" })).StatusCode);
    }

    [Theory]
    [InlineData("0 0 30 2 *")]
    [InlineData("0 0 31 4 *")]
    [InlineData("0 0 0 31 11 *")]
    public async Task A_schedule_that_can_never_fire_is_refused(string cron)
    {
        var response = await Http.PostRawAsync("/schedules", $$"""{"name":"never","cron":"{{cron}}","function":"noop"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.True(problem["errors"]!.AsObject().ContainsKey("cron"));
        Assert.Contains("never fires", problem["detail"]!.GetValue<string>());
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.schedule WHERE name = 'never'"));

        // February 29th fires (in leap years): refused only what can never fire.
        var leap = await Http.PostRawAsync("/schedules", """{"name":"leap-day","cron":"0 0 29 2 *","function":"noop"}""");
        Assert.Equal(HttpStatusCode.OK, leap.StatusCode);
        await Http.DeleteAsync("/schedules/leap-day");
    }
}
