using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Security;

/// <summary>API keys, the dashboard's door, loopback-only without keys, and the limits: each refusal proven.</summary>
public sealed class AuthAndLimitsTests(SystemFixture system) : SystemTest(system)
{
    private const string AdminKey = "admin-key-0123456789abcdef";
    private const string ReaderKey = "reader-key-0123456789abcdef";

    private Task<(HttpClient Http, ChildProcess Api)> StartSecuredApiAsync(Dictionary<string, string?>? extra = null) =>
        SecuredApi.StartAsync(Fixture, "secured-api", [("admin", AdminKey, "admin"), ("reader", ReaderKey, "readonly")], extra);

    private static HttpRequestMessage Request(HttpMethod method, string path, string? key, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null) request.Content = JsonContent.Create(body);
        return request;
    }

    [Fact]
    public async Task With_keys_configured_every_call_without_a_valid_key_is_401_problem()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;

        foreach (var (method, path) in new[] { (HttpMethod.Get, "/jobs"), (HttpMethod.Get, "/functions"), (HttpMethod.Get, "/maps/" + Guid.NewGuid()),
                     (HttpMethod.Get, "/pool"), (HttpMethod.Get, "/schedules"), (HttpMethod.Post, "/jobs") })
        {
            foreach (var key in new[] { null, "wrong-key" })
            {
                var response = await http.SendAsync(Request(method, path, key, method == HttpMethod.Post ? new { function = "noop" } : null));
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
            }
        }
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task Admin_key_submits_read_only_key_reads_but_cannot_submit_or_cancel()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;

        var submitted = await http.SendAsync(Request(HttpMethod.Post, "/jobs?wait=30", AdminKey, new { function = "math.square", args = new[] { 6 } }));
        Assert.Equal(HttpStatusCode.OK, submitted.StatusCode);
        var id = (await submitted.JsonAsync())["id"]!.GetValue<Guid>();

        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Request(HttpMethod.Get, $"/jobs/{id}", ReaderKey))).StatusCode);
        var refused = await http.SendAsync(Request(HttpMethod.Post, "/jobs", ReaderKey, new { function = "noop" }));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(Request(HttpMethod.Delete, $"/jobs/{id}", ReaderKey))).StatusCode);
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Dashboard_is_closed_to_anonymous_users_and_read_only_for_read_only_keys()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;

        var anonymous = await http.GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("Basic", anonymous.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Request(HttpMethod.Get, "/hangfire", "wrong"))).StatusCode);

        var id = await Http.SubmitOkAsync(new { function = "noop" });
        await Http.WaitForJobAsync(id);
        var page = $"/hangfire/jobs/details/{await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id)}";

        var basic = new HttpRequestMessage(HttpMethod.Get, page);
        basic.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("me:" + AdminKey)));
        var admin = await http.SendAsync(basic);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Contains("actions/requeue", await admin.Content.ReadAsStringAsync()); // the button that changes the job

        var reader = await http.SendAsync(Request(HttpMethod.Get, page, ReaderKey));
        Assert.Equal(HttpStatusCode.OK, reader.StatusCode);
        Assert.DoesNotContain("actions/requeue", await reader.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Without_keys_the_api_listens_on_loopback_only_and_says_so()
    {
        var port = Network.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}");
        var api = Fixture.StartApi("open-api", url, new() { ["Api__Urls"] = $"http://0.0.0.0:{port}" });
        await using var _ = api;
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => "", TimeSpan.FromSeconds(60));

        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Any(l => l.Contains("[open-api]") && l.Contains("loopback only"))), "the warning");
        var listening = Fixture.Output.Where(l => l.Contains("[open-api]")).SkipWhile(l => !l.Contains("Now listening on")).Take(2);
        Assert.Contains($"http://127.0.0.1:{port}", string.Join('\n', listening));
        Assert.DoesNotContain("0.0.0.0", string.Join('\n', Fixture.Output.Where(l => l.Contains("[open-api]") && l.Contains("listening"))));
    }

    [Fact]
    public async Task Over_the_rate_limit_a_key_gets_429_with_retry_after()
    {
        var (http, api) = await StartSecuredApiAsync(new() { ["Api__RateLimitPerSecond"] = "2", ["Api__RateLimitBurst"] = "5" });
        await using var _ = api;
        using var __ = http;

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => http.SendAsync(Request(HttpMethod.Get, "/functions", ReaderKey))));

        var limited = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.InRange(responses.Count(r => r.StatusCode == HttpStatusCode.OK), 5, 7);
        Assert.NotEmpty(limited);
        Assert.All(limited, r =>
        {
            Assert.NotNull(r.Headers.RetryAfter);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        });
        // Another key has its own bucket.
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Request(HttpMethod.Get, "/functions", AdminKey))).StatusCode);
    }

    [Fact]
    public async Task Arguments_nested_deeper_than_the_limit_are_refused_with_400()
    {
        var deep = new StringBuilder("{\"function\":\"text.sha256\",\"args\":[");
        for (var i = 0; i < 40; i++) deep.Append('[');
        for (var i = 0; i < 40; i++) deep.Append(']');
        deep.Append("]}");

        var response = await Http.PostRawAsync("/jobs", deep.ToString());

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Jobs:MaxJsonDepth", (await response.JsonAsync())["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_map_over_the_item_limit_is_refused_with_400()
    {
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        await using var api = Fixture.StartApi("small-maps-api", url, new() { ["Jobs__MaxMapItems"] = "10" });
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => "", TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = url };

        var response = await http.PostAsJsonAsync("/maps", new { function = "math.square", items = Enumerable.Range(0, 11) });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Jobs:MaxMapItems", (await response.JsonAsync())["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_null_character_in_an_argument_is_stored_and_passed_as_sent()
    {
        // Arguments are stored as sent (json, not jsonb, which cannot hold \u0000): a Python string may contain it.
        var response = await Http.PostRawAsync("/jobs", """{"function":"text.sha256","args":["a\u0000b"]}""");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await Http.WaitForJobAsync((await response.JsonAsync())["id"]!.GetValue<Guid>());
        Assert.Equal("a\0b", job["args"]![0]!.GetValue<string>());
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
    }
}
