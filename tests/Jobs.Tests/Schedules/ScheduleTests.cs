using System.Net;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Schedules;

public sealed class ScheduleTests(SystemFixture system) : SystemTest(system)
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        foreach (var s in JsonNode.Parse(await Http.GetStringAsync("/schedules"))!.AsArray())
            await Http.DeleteAsync($"/schedules/{s!["name"]!.GetValue<string>()}");
    }

    [Fact]
    public async Task Schedule_submits_tracked_jobs_until_it_is_deleted()
    {
        var response = await Http.PostAsync("/schedules", Json("""
            { "name": "every-second", "cron": "* * * * * *", "timeZone": "Europe/Berlin", "function": "math.square", "args": [3] }
            """));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var schedule = await response.JsonAsync();
        Assert.Equal("Europe/Berlin", schedule["timeZone"]!.GetValue<string>());
        Assert.NotNull(schedule["nextRunAt"]);

        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM jobs.job WHERE schedule_name = 'every-second' AND state = 'succeeded'") >= 2, "two scheduled runs", 30);
        var listed = JsonNode.Parse(await Http.GetStringAsync("/schedules"))!.AsArray();
        Assert.Equal("every-second", Assert.Single(listed)!["name"]!.GetValue<string>());
        var job = (await (await Http.GetAsync("/jobs?function=math.square&state=succeeded&limit=1")).JsonAsync())["items"]![0]!;
        Assert.Equal(9, job["result"]!.GetValue<double>());

        Assert.Equal(HttpStatusCode.NoContent, (await Http.DeleteAsync("/schedules/every-second")).StatusCode);
        var count = await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE schedule_name = 'every-second'");
        await Task.Delay(3000);
        Assert.Equal(count, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE schedule_name = 'every-second'"));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.DeleteAsync("/schedules/every-second")).StatusCode);
    }

    [Theory]
    [InlineData("""{ "name": "x", "cron": "not a cron", "function": "noop" }""", "cron")]
    [InlineData("""{ "name": "x", "cron": "* * * * *", "timeZone": "Mars/Olympus", "function": "noop" }""", "timeZone")]
    [InlineData("""{ "name": "bad name!", "cron": "* * * * *", "function": "noop" }""", "name")]
    [InlineData("""{ "name": "x", "cron": "* * * * *", "function": "math.square" }""", "x")]
    public async Task Invalid_schedules_are_refused_with_400_naming_the_field(string body, string field)
    {
        var response = await Http.PostAsync("/schedules", Json(body));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.JsonAsync())["errors"]!.AsObject().ContainsKey(field));
        Assert.Empty(JsonNode.Parse(await Http.GetStringAsync("/schedules"))!.AsArray());
    }

    [Fact]
    public async Task A_schedule_PostgreSQL_refuses_leaves_no_recurring_job_behind()
    {
        // "\u0000" is valid JSON, but jsonb cannot hold it: PostgreSQL refuses the row.
        var response = await Http.PostAsync("/schedules", Json("""
            { "name": "nul-arg", "cron": "0 3 * * *", "function": "text.sha256", "args": ["a\u0000"] }
            """));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(JsonNode.Parse(await Http.GetStringAsync("/schedules"))!.AsArray());
        Assert.Null(await RecurringCronAsync("nul-arg"));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.DeleteAsync("/schedules/nul-arg")).StatusCode);
    }

    [Theory]
    [InlineData("""{ "name": "nightly", "cron": "0 4 * * *", "function": "text.sha256", "args": ["a\u0000"] }""")] // PostgreSQL refuses it
    [InlineData("""{ "name": "nightly", "cron": "0 4 * * * * *", "function": "text.sha256", "args": ["b"] }""")] // Hangfire refuses it
    public async Task A_refused_replacement_keeps_the_schedule_it_would_have_replaced(string replacement)
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.PostAsync("/schedules", Json("""
            { "name": "nightly", "cron": "0 3 * * *", "function": "text.sha256", "args": ["a"] }
            """))).StatusCode);

        Assert.Equal(HttpStatusCode.BadRequest, (await Http.PostAsync("/schedules", Json(replacement))).StatusCode);

        var kept = Assert.Single(JsonNode.Parse(await Http.GetStringAsync("/schedules"))!.AsArray())!;
        Assert.Equal("0 3 * * *", kept["cron"]!.GetValue<string>());
        Assert.Equal("""["a"]""", kept["args"].Compact());
        Assert.Equal("0 3 * * *", await RecurringCronAsync("nightly"));
    }

    /// <summary>The cron of Hangfire's recurring job <paramref name="name"/> (what fires a schedule), null if there is none.</summary>
    private async Task<string?> RecurringCronAsync(string name) => await Database.ScalarAsync<long>(
        "SELECT count(*) FROM hangfire.set WHERE key = 'recurring-jobs' AND value = $1", name) == 0
        ? null
        : await Database.ScalarAsync<string>("SELECT value FROM hangfire.hash WHERE key = 'recurring-job:' || $1 AND field = 'Cron'", name);

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");
}
