using System.Net;
using System.Net.Http.Headers;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.SingleJobs;

/// <summary>POST /jobs/{id}/retry: a failed or canceled job runs again through the API, same id, attempts going on.</summary>
public sealed class RetryJobTests(SystemFixture system) : SystemTest(system)
{
    private static string State(System.Text.Json.Nodes.JsonObject job) => job["state"]!.GetValue<string>();

    [Fact]
    public async Task Failed_job_retried_through_the_API_runs_again_with_its_attempts_going_on_and_succeeds()
    {
        // debug.flaky fails on attempts before 3; retries = 1: attempts 1 and 2 fail, the job ends failed.
        var id = await Http.SubmitOkAsync(new { function = "debug.flaky", args = new[] { 3 }, retries = 1 });
        var failed = await Http.WaitForJobAsync(id);
        Assert.Equal("failed", State(failed));
        Assert.Equal(2, failed["attempts"]!.GetValue<int>());

        var response = await Http.PostAsync($"/jobs/{id}/retry", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal($"/jobs/{id}", response.Headers.Location?.OriginalString);
        Assert.False(response.Headers.Contains("Warning")); // the shared workers serve "default"
        var accepted = await response.JsonAsync();
        Assert.Equal(id, accepted["id"]!.GetValue<Guid>());
        Assert.Contains(State(accepted), new[] { "enqueued", "processing", "succeeded" });
        Assert.Null(accepted["error"]);

        var done = await Http.WaitForJobAsync(id);
        Assert.Equal("succeeded", State(done));
        Assert.Equal(3, done["attempts"]!.GetValue<int>());
        Assert.Equal(3, done["result"]!.GetValue<int>());
        Assert.Null(done["error"]);
        // The result endpoint agrees, and the row is one row: the same id, listed once.
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync($"/jobs/{id}/result")).StatusCode);
        Assert.Equal(1, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Job_that_fails_again_after_a_retry_ends_failed_after_one_more_attempt()
    {
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "always" }, retries = 0 });
        Assert.Equal("failed", State(await Http.WaitForJobAsync(id)));

        Assert.Equal(HttpStatusCode.Accepted, (await Http.PostAsync($"/jobs/{id}/retry", null)).StatusCode);
        var again = await Http.WaitForJobAsync(id);

        Assert.Equal("failed", State(again));
        Assert.Equal(2, again["attempts"]!.GetValue<int>());
        Assert.Equal("Jobs.Core.Functions.BuiltIn.DebugFailureException", again["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Canceled_job_is_retried_and_runs()
    {
        var queue = SystemFixture.PrivateQueue(); // nothing serves it yet: the job is canceled before it starts
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 9 }, queue });
        Assert.Equal(HttpStatusCode.OK, (await Http.DeleteAsync($"/jobs/{id}")).StatusCode);

        var response = await Http.PostAsync($"/jobs/{id}/retry", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("enqueued", State(await response.JsonAsync()));
        // No live worker serves the queue: accepted, and it says so.
        Assert.Contains(queue, string.Join(' ', response.Headers.GetValues("Warning")));

        await using var worker = Fixture.StartWorker("retry-worker", [queue]);
        var done = await Http.WaitForJobAsync(id, 60);
        Assert.Equal("succeeded", State(done));
        Assert.Equal(81, done["result"]!.GetValue<int>());
        Assert.Equal(1, done["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task Retry_of_a_job_not_failed_or_canceled_is_409_and_of_an_unknown_one_404()
    {
        var succeeded = await Http.SubmitOkAsync(new { function = "noop" });
        Assert.Equal("succeeded", State(await Http.WaitForJobAsync(succeeded)));
        var waiting = await Http.SubmitOkAsync(new { function = "noop", queue = SystemFixture.PrivateQueue() });

        foreach (var (id, state) in new[] { (succeeded, "succeeded"), (waiting, "enqueued") })
        {
            var response = await Http.PostAsync($"/jobs/{id}/retry", null);
            Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(state, (await response.JsonAsync())["state"]!.GetValue<string>());
            Assert.Equal(state, State(await (await Http.GetAsync($"/jobs/{id}")).JsonAsync()));
        }
        var unknown = await Http.PostAsync($"/jobs/{Guid.NewGuid()}/retry", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Retry_needs_an_admin_key()
    {
        const string admin = "retry-admin-key-0123456789", reader = "retry-reader-key-0123456789";
        var (http, api) = await SecuredApi.StartAsync(Fixture, "retry-secured-api", [("admin", admin, "admin"), ("reader", reader, "readonly")]);
        await using var _ = api;
        using var __ = http;
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "x" }, retries = 0 });
        Assert.Equal("failed", State(await Http.WaitForJobAsync(id)));

        async Task<HttpStatusCode> RetryWith(string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/jobs/{id}/retry");
            if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return (await http.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await RetryWith(null));
        Assert.Equal(HttpStatusCode.Forbidden, await RetryWith(reader));
        Assert.Equal("failed", State(await (await Http.GetAsync($"/jobs/{id}")).JsonAsync()));
        Assert.Equal(HttpStatusCode.Accepted, await RetryWith(admin));
    }
}
