using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.SingleJobs;

/// <summary>apply_async → get(timeout), apply, and remote exceptions, through the real API and worker processes.</summary>
public sealed class SubmitAndResultTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task A_batch_stores_each_job_on_its_own_and_answers_in_order()
    {
        var response = await Http.PostRawAsync("/jobs/batch", """
            { "jobs": [ { "function": "math.square", "args": [3] }, { "function": "no.such" },
                        { "function": "math.square", "args": ["x"] }, { "function": "math.pow", "args": [2], "kwargs": { "y": 5 } } ] }
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var jobs = (await response.JsonAsync())["jobs"]!.AsArray();
        Assert.Equal(4, jobs.Count);
        Assert.Equal(404, jobs[1]!["problem"]!["status"]!.GetValue<int>());
        Assert.Contains("no.such", jobs[1]!["problem"]!["detail"]!.GetValue<string>());
        Assert.Equal(400, jobs[2]!["problem"]!["status"]!.GetValue<int>());
        Assert.NotNull(jobs[2]!["problem"]!["errors"]);
        Assert.Equal(2L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(9, (await Http.WaitForJobAsync(jobs[0]!["job"]!["id"]!.GetValue<Guid>()))["result"]!.GetValue<int>());
        Assert.Equal(32, (await Http.WaitForJobAsync(jobs[3]!["job"]!["id"]!.GetValue<Guid>()))["result"]!.GetValue<int>());

        // Refused whole, nothing stored: no jobs, too many, an Idempotency-Key (each job needs its own).
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.PostRawAsync("/jobs/batch", """{ "jobs": [] }""")).StatusCode);
        var tooMany = "{\"jobs\": [" + string.Join(",", Enumerable.Repeat("""{"function":"noop"}""", 1001)) + "]}";
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.PostRawAsync("/jobs/batch", tooMany)).StatusCode);
        var keyed = new HttpRequestMessage(HttpMethod.Post, "/jobs/batch") { Content = new StringContent("""{ "jobs": [ { "function": "noop" } ] }""", System.Text.Encoding.UTF8, "application/json") };
        keyed.Headers.Add("Idempotency-Key", "k1");
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.SendAsync(keyed)).StatusCode);
        Assert.Equal(2L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Submitted_job_is_stored_before_the_202_and_its_result_comes_back()
    {
        var response = await Http.SubmitAsync(new { function = "math.square", args = new[] { 7 } });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await response.JsonAsync();
        var id = job["id"]!.GetValue<Guid>();
        Assert.Equal($"/jobs/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal("math.square", job["function"]!.GetValue<string>());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE id = $1", id));

        var result = await Http.GetAsync($"/jobs/{id}/result?timeout=30");
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(49, (await result.JsonAsync())["result"]!.GetValue<double>());
    }

    [Fact]
    public async Task Wait_on_submit_answers_200_with_the_finished_job()
    {
        var response = await Http.SubmitAsync(new { function = "math.pow", args = new[] { 2 }, kwargs = new { y = 10 } }, "?wait=30");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var job = await response.JsonAsync();
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.True(job["ready"]!.GetValue<bool>());
        Assert.True(job["successful"]!.GetValue<bool>());
        Assert.Equal(1024, job["result"]!.GetValue<double>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        Assert.True(job["startedAt"].Time() >= job["createdAt"].Time());
        Assert.True(job["finishedAt"].Time() >= job["startedAt"].Time());
    }

    [Fact]
    public async Task Wait_that_runs_out_answers_202_with_the_unfinished_job()
    {
        var response = await Http.SubmitAsync(new { function = "time.sleep", args = new[] { 5 } }, "?wait=0.3");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await response.JsonAsync();
        Assert.False(job["ready"]!.GetValue<bool>());
        Assert.Null(job["successful"]);
    }

    [Fact]
    public async Task Get_with_wait_returns_as_soon_as_the_job_finishes()
    {
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 0.5 } });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var job = await (await Http.GetAsync($"/jobs/{id}?wait=20")).JsonAsync();

        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"waited {clock.Elapsed}, the job takes 0.5 s");
    }

    [Fact]
    public async Task Result_of_an_unfinished_job_is_202_with_retry_after()
    {
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 3 } });

        var response = await Http.GetAsync($"/jobs/{id}/result?timeout=0.2");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(id, (await response.JsonAsync())["id"]!.GetValue<Guid>());
    }

    [Fact]
    public async Task Remote_exception_comes_back_as_424_with_type_message_and_stack_trace()
    {
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "the disk is full" } });

        var response = await Http.GetAsync($"/jobs/{id}/result?timeout=30");

        Assert.Equal(HttpStatusCode.FailedDependency, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.False(string.IsNullOrEmpty(problem["type"]?.GetValue<string>()), "problem+json needs a type");
        Assert.Equal("Jobs.Core.Functions.BuiltIn.DebugFailureException", problem["exceptionType"]!.GetValue<string>());
        Assert.Equal("the disk is full", problem["message"]!.GetValue<string>());
        Assert.Contains("DebugFunctions.Fail", problem["stackTrace"]!.GetValue<string>());

        var job = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.False(job["successful"]!.GetValue<bool>());
        Assert.Equal("the disk is full", job["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Function_can_report_progress_visible_in_the_job()
    {
        var id = await Http.SubmitOkAsync(new { function = "progress.demo", args = new[] { 4, 50 } });

        var job = await Http.WaitForJobAsync(id);

        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(1.0, job["progress"]!["fraction"]!.GetValue<double>());
        Assert.Equal("step 4 of 4", job["progress"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Unknown_job_id_is_404_problem()
    {
        var response = await Http.GetAsync($"/jobs/{Guid.NewGuid()}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/jobs/not-a-guid")).StatusCode);
    }

    [Fact]
    public async Task Finished_jobs_are_kept_for_the_retention_period_in_both_schemas()
    {
        var id = await Http.SubmitOkAsync(new { function = "noop" });
        await Http.WaitForJobAsync(id);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'") == 1L, "Hangfire marked the job succeeded");

        // Default Jobs:Retention is 7 days; Hangfire alone would expire the job after 1 day.
        var ours = await Database.ScalarAsync<double>(
            "SELECT (extract(epoch FROM expires_at - finished_at) / 86400)::float8 FROM jobs.job WHERE id = $1", id);
        var hangfire = await Database.ScalarAsync<double>(
            "SELECT (extract(epoch FROM expireat - (now() AT TIME ZONE 'UTC')) / 86400)::float8 FROM hangfire.job");
        Assert.Equal(7.0, ours, 3);
        Assert.InRange(hangfire, 6.9, 7.01);
    }
}
