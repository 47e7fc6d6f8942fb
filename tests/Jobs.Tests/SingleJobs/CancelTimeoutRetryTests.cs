using System.Diagnostics;
using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.SingleJobs;

/// <summary>terminate() for one job, per-job timeouts, retries with backoff, delayed start.</summary>
public sealed class CancelTimeoutRetryTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task Queued_job_is_canceled_at_once_and_never_runs()
    {
        var queue = SystemFixture.PrivateQueue(); // no worker serves it, so the job stays queued
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 3 }, queue });

        var response = await Http.DeleteAsync($"/jobs/{id}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var job = await response.JsonAsync();
        Assert.Equal("canceled", job["state"]!.GetValue<string>());
        Assert.True(job["ready"]!.GetValue<bool>());
        Assert.Equal("Jobs.Core.Execution.JobCanceledException", job["error"]!["type"]!.GetValue<string>());

        await using var worker = Fixture.StartWorker("cancel-worker", [queue]);
        await Task.Delay(2000);
        var after = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
        Assert.Equal("canceled", after["state"]!.GetValue<string>());
        Assert.Equal(0, after["attempts"]!.GetValue<int>());
        var result = await Http.GetAsync($"/jobs/{id}/result");
        Assert.Equal(HttpStatusCode.FailedDependency, result.StatusCode);
    }

    [Fact]
    public async Task Running_job_observes_its_token_and_ends_canceled_within_about_a_second()
    {
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 60 } });
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["state"]!.GetValue<string>() == "processing",
            "the job is running");

        var clock = Stopwatch.StartNew();
        var response = await Http.DeleteAsync($"/jobs/{id}");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await Http.WaitForJobAsync(id, 20);
        clock.Stop();

        Assert.Equal("canceled", job["state"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Cancel_of_a_finished_job_is_409_and_of_an_unknown_one_404()
    {
        var id = await Http.SubmitOkAsync(new { function = "noop" });
        await Http.WaitForJobAsync(id);

        var finished = await Http.DeleteAsync($"/jobs/{id}");
        Assert.Equal(HttpStatusCode.Conflict, finished.StatusCode);
        Assert.Equal("application/problem+json", finished.Content.Headers.ContentType?.MediaType);
        Assert.Equal("succeeded", (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["state"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.NotFound, (await Http.DeleteAsync($"/jobs/{Guid.NewGuid()}")).StatusCode);
    }

    [Fact]
    public async Task Job_running_past_its_timeout_fails_with_a_timeout_error()
    {
        var clock = Stopwatch.StartNew();
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 30 }, timeoutSeconds = 0.5 });

        var job = await Http.WaitForJobAsync(id, 20);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("Jobs.Core.Execution.JobTimeoutException", job["error"]!["type"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Timeout_ends_even_a_function_that_ignores_its_token()
    {
        // text.sha256 never looks at a token: 10 million rounds take seconds, so the runner must stop waiting on its own.
        var id = await Http.SubmitOkAsync(new { function = "text.sha256", args = new object[] { "x", 10_000_000 }, timeoutSeconds = 0.3 });

        var job = await Http.WaitForJobAsync(id, 20);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("Jobs.Core.Execution.JobTimeoutException", job["error"]!["type"]!.GetValue<string>());
        Assert.True(job["finishedAt"].Time() - job["startedAt"].Time() < TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task A_function_can_set_a_default_timeout_that_a_submission_overrides()
    {
        var function = await (await Http.GetAsync("/functions/progress.demo")).JsonAsync();
        Assert.Equal(600, function["timeoutSeconds"]!.GetValue<double>());

        var byDefault = await (await Http.SubmitAsync(new { function = "progress.demo", args = new[] { 1, 0 } })).JsonAsync();
        var overridden = await (await Http.SubmitAsync(new { function = "progress.demo", args = new[] { 1, 0 }, timeoutSeconds = 5 })).JsonAsync();

        Assert.Equal(600, byDefault["timeoutSeconds"]!.GetValue<double>());
        Assert.Equal(5, overridden["timeoutSeconds"]!.GetValue<double>());
    }

    [Fact]
    public async Task Failing_job_is_retried_with_backoff_and_keeps_its_last_exception()
    {
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "flaky" }, retries = 2 });

        var job = await Http.WaitForJobAsync(id, 60);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal(3, job["attempts"]!.GetValue<int>());
        Assert.Equal(2, job["retries"]!.GetValue<int>());
        Assert.Equal("flaky", job["error"]!["message"]!.GetValue<string>());
        // Backoff 0.2 s then 0.4 s (Jobs:RetryBaseDelay in the tests), plus the scheduler's polling.
        Assert.True(job["finishedAt"].Time() - job["createdAt"].Time() >= TimeSpan.FromSeconds(0.6));
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM hangfire.job"));
    }

    [Fact]
    public async Task Without_retries_a_failure_is_final_after_one_attempt()
    {
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "once" } });

        var job = await Http.WaitForJobAsync(id, 30);
        await Task.Delay(1500);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal(1, (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task Delayed_job_waits_scheduled_until_its_time()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 4 }, delaySeconds = 2 });
        var early = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
        Assert.Equal("scheduled", early["state"]!.GetValue<string>());

        var job = await Http.WaitForJobAsync(id, 30);

        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.True(job["startedAt"].Time() - job["createdAt"].Time() >= TimeSpan.FromSeconds(1.9),
            $"started {job["startedAt"]} for a job created {job["createdAt"]} with a 2 s delay");
    }

    [Fact]
    public async Task Job_with_run_at_starts_at_that_time_and_can_be_canceled_while_scheduled()
    {
        var runAt = DateTimeOffset.UtcNow.AddSeconds(1.5);
        var soon = await Http.SubmitOkAsync(new { function = "noop", runAt });
        var later = await Http.SubmitOkAsync(new { function = "noop", runAt = DateTimeOffset.UtcNow.AddHours(1) });

        Assert.Equal(HttpStatusCode.OK, (await Http.DeleteAsync($"/jobs/{later}")).StatusCode);
        var job = await Http.WaitForJobAsync(soon, 30);

        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.True(job["startedAt"].Time() >= runAt.UtcDateTime.AddMilliseconds(-50));
        Assert.Equal("canceled", (await (await Http.GetAsync($"/jobs/{later}")).JsonAsync())["state"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"function":"noop","delaySeconds":-1}""", "delaySeconds")]
    [InlineData("""{"function":"noop","delaySeconds":1,"runAt":"2030-01-01T00:00:00Z"}""", "runAt")]
    [InlineData("""{"function":"noop","timeoutSeconds":0}""", "timeoutSeconds")]
    [InlineData("""{"function":"noop","retries":101}""", "retries")]
    [InlineData("""{"function":"noop","callbackUrl":"ftp://127.0.0.1/x"}""", "callbackUrl")]
    [InlineData("""{"function":"noop","callbackUrl":"http://169.254.169.254/latest/meta-data"}""", "callbackUrl")]
    public async Task Invalid_job_options_are_refused_with_400_naming_them(string body, string field)
    {
        var response = await Http.PostRawAsync("/jobs", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.JsonAsync())["errors"]!.AsObject().ContainsKey(field));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }
}
