using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Security;

/// <summary>
/// The red team's attacks, kept: each runs against the real API over HTTP in every CI run, so what got through once
/// (cross-site dashboard actions, a bind beyond loopback, invalid UTF-8, unthrottled key guessing, one
/// Idempotency-Key namespace for all tenants) and what held (the auth matrix, header tricks, SSRF forms) both stay
/// proven. Hostile bodies in bulk are <see cref="FuzzTests"/>.
/// </summary>
public sealed class RedTeamTests(SystemFixture system) : SystemTest(system)
{
    private const string AdminKey = "red-admin-key-0123456789abcdef";
    private const string OtherAdminKey = "red-other-admin-key-0123456789";
    private const string ReaderKey = "red-reader-key-0123456789abcdef";

    private Task<(HttpClient Http, ChildProcess Api)> StartSecuredApiAsync(Dictionary<string, string?>? extra = null) =>
        SecuredApi.StartAsync(Fixture, "red-team-api",
            [("admin", AdminKey, "admin"), ("reader", ReaderKey, "readonly"), ("other-tenant", OtherAdminKey, "admin")], extra);

    /// <summary>GET /jobs with <paramref name="key"/>, as the client <paramref name="forwardedFor"/> behind a proxy if given.</summary>
    private static async Task<HttpStatusCode> GetJobsAsync(HttpClient http, string key, string? forwardedFor = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/jobs");
        Bearer(request, key);
        if (forwardedFor is not null) request.Headers.Add("X-Forwarded-For", forwardedFor);
        return (await http.SendAsync(request)).StatusCode;
    }

    private static void Bearer(HttpRequestMessage request, string key) => request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);

    private static void Basic(HttpRequestMessage request, string key) =>
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("me:" + key)));

    private async Task<string> ScheduledHangfireJobAsync()
    {
        var id = await Http.SubmitOkAsync(new { function = "noop", delaySeconds = 600 });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id) is not null, "dispatched");
        return (await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id))!;
    }

    private Task<string?> HangfireStateAsync(string hangfireJobId) =>
        Database.ScalarAsync<string>("SELECT statename FROM hangfire.job WHERE id = $1::bigint", hangfireJobId);

    // ---- Finding 1: cross-site requests against the dashboard ----

    [Fact]
    public async Task Dashboard_actions_refuse_other_sites_pages_requests_without_the_pages_token_and_read_only_keys()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;
        var victim = await ScheduledHangfireJobAsync();

        HttpRequestMessage Delete(Action<HttpRequestMessage> authorize, params (string Name, string Value)[] headers)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/hangfire/jobs/scheduled/delete") { Content = new FormUrlEncodedContent([new("jobs[]", victim)]) };
            authorize(request);
            foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
            return request;
        }

        // The red team's request: an admin's cached Basic credentials, sent by another site's page.
        foreach (var attack in new[]
                 {
                     Delete(r => Basic(r, AdminKey), ("Origin", "https://evil.example")),
                     Delete(r => Basic(r, AdminKey), ("Origin", "null")),
                     Delete(r => Basic(r, AdminKey), ("Sec-Fetch-Site", "cross-site")),
                     Delete(r => Basic(r, AdminKey), ("Sec-Fetch-Site", "same-site"), ("Origin", "http://other.127.0.0.1.example")),
                     Delete(r => Basic(r, AdminKey)), // same origin as far as headers tell, but without the page's antiforgery token
                 })
        {
            var response = await http.SendAsync(attack);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("Scheduled", await HangfireStateAsync(victim));
        }

        // With the page's own token too, another site's Origin is refused by the Origin check itself.
        var withToken = await DashboardActions.PostActionAsync(http, "scheduled/delete", victim, r =>
        {
            Basic(r, AdminKey);
            if (r.Method == HttpMethod.Post) r.Headers.TryAddWithoutValidation("Origin", "https://evil.example");
        });
        Assert.Equal(HttpStatusCode.Forbidden, withToken.StatusCode);
        Assert.Equal("Cross-site request refused", (await withToken.JsonAsync())["title"]!.GetValue<string>());
        Assert.Equal("Scheduled", await HangfireStateAsync(victim));

        // A read-only key is refused with 403 (a 401 makes the browser ask for another key), even with the token.
        var reader = await DashboardActions.PostActionAsync(http, "scheduled/delete", victim, r => Bearer(r, ReaderKey));
        Assert.Equal(HttpStatusCode.Forbidden, reader.StatusCode);
        Assert.Equal("application/problem+json", reader.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Scheduled", await HangfireStateAsync(victim));
        // Its pages' live counters are a POST that only reads: allowed.
        var counters = await DashboardActions.PostAsync(http, "/hangfire/stats", [new("metrics[]", "enqueued:count")], r => Bearer(r, ReaderKey));
        Assert.Equal(HttpStatusCode.OK, counters.StatusCode);

        // The dashboard's own button: the page's token in its header, the admin's key.
        var admin = await DashboardActions.PostActionAsync(http, "scheduled/delete", victim, r => Basic(r, AdminKey));
        Assert.Equal(HttpStatusCode.NoContent, admin.StatusCode);
        Assert.Equal("Deleted", await HangfireStateAsync(victim));
    }

    [Fact]
    public async Task Without_keys_the_dashboard_on_loopback_refuses_cross_site_actions_too()
    {
        var victim = await ScheduledHangfireJobAsync();
        var forged = new HttpRequestMessage(HttpMethod.Post, "/hangfire/jobs/scheduled/enqueue") { Content = new FormUrlEncodedContent([new("jobs[]", victim)]) };
        forged.Headers.TryAddWithoutValidation("Origin", "http://evil.example");

        Assert.Equal(HttpStatusCode.Forbidden, (await Http.SendAsync(forged)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Http.PostAsync("/hangfire/jobs/scheduled/enqueue", new FormUrlEncodedContent([new("jobs[]", victim)]))).StatusCode);
        Assert.Equal("Scheduled", await HangfireStateAsync(victim));
    }

    // ---- Finding 2: the loopback rule and Kestrel's own endpoint settings ----

    [Fact]
    public async Task Without_keys_a_kestrel_endpoint_beyond_loopback_is_never_served_and_stops_the_api_with_one_clear_line()
    {
        // Kestrel:Endpoints overrides Api:Urls, so the rule is checked on what was bound, and until the service has
        // stopped every connection that does not come from loopback is closed unanswered. This machine's own
        // non-loopback address plays the outside.
        var outside = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        Assert.True(outside is not null, "this test needs a non-loopback IPv4 address on the machine");
        var port = Network.FreePort();
        await using var api = Fixture.StartApi("kestrel-endpoint-api", new Uri($"http://127.0.0.1:{port}"),
            new() { ["Kestrel__Endpoints__Http__Url"] = $"http://0.0.0.0:{port}" });

        var answeredFromOutside = false;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!api.HasExited && DateTime.UtcNow < deadline)
        {
            answeredFromOutside |= await AnswersAsync(new Uri($"http://{outside}:{port}/health/live"));
            await Task.Delay(20);
        }

        Assert.False(answeredFromOutside, $"the API answered a connection from {outside} without keys");
        Assert.True(api.HasExited, "the API kept serving on 0.0.0.0 without keys");
        Assert.NotEqual(0, api.ExitCode);
        var said = Fixture.Output.Where(l => l.Contains("[kestrel-endpoint-api]")).ToList();
        Assert.Contains(said, l => l.Contains("no API keys are configured") && l.Contains($"0.0.0.0:{port}"));
        Assert.DoesNotContain(said, l => l.Contains("loopback only (http://0.0.0.0"));
    }

    private static async Task<bool> AnswersAsync(Uri url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            return (await http.GetAsync(url)).IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    // ---- Finding 3: invalid UTF-8 inside JSON strings ----

    public static TheoryData<string, string, string> NotUtf8 => new()
    {
        { "/jobs", """{"function":"text.sha256","args":["a~b"]}""", "args[0]" },
        { "/jobs", """{"function":"text.sha256","args":["x"],"kwargs":{"rounds":"~"}}""", "kwargs.rounds" },
        { "/jobs", """{"function":"text.sha256","args":["x"],"kwargs":{"r~":1}}""", "kwargs" },
        { "/jobs", """{"function":"text.sha256","args":[{"nested":["ok","~"]}]}""", "args[0].nested[1]" },
        { "/jobs", """{"function":"math.squ~re","args":[1]}""", "function" },
        { "/jobs", """{"function":"noop","queue":"q~"}""", "queue" },
        { "/maps", """{"function":"text.sha256","items":["a","b~"]}""", "items[1]" },
        { "/maps", """{"function":"text.sha256","items":[["a"]],"star":true,"kwargs":{"rounds":"~"}}""", "kwargs.rounds" },
        { "/schedules", """{"name":"utf8","cron":"0 0 1 1 *","function":"text.sha256","args":["~"]}""", "args[0]" },
        // Escaped lone surrogates: valid JSON text, but not text either.
        { "/jobs", """{"function":"text.sha256","args":["x"],"kwargs":{"\ud800":1}}""", "kwargs" },
        { "/jobs", """{"function":"text.sha256","args":["\udc00x"]}""", "args[0]" },
        { "/jobs", """{"function":"\ud800","args":[]}""", "function" },
        { "/jobs", """{"function":"noop","queue":"\udfff"}""", "queue" },
        { "/maps", """{"function":"text.sha256","items":["a"],"kwargs":{"\udc00x":1}}""", "kwargs" },
        { "/schedules", """{"name":"utf8","cron":"0 0 1 1 *","function":"text.sha256","args":["x"],"kwargs":{"\ud800":1}}""", "kwargs" },
    };

    [Theory]
    [MemberData(nameof(NotUtf8))]
    public async Task Bytes_that_are_not_utf8_inside_a_json_string_are_400_naming_the_field(string path, string template, string field)
    {
        // '~' stands for 0xFF 0xFE: never valid in UTF-8. Before: 500 ("Cannot transcode invalid UTF-8", "missing low surrogate").
        var bytes = Encoding.UTF8.GetBytes(template).SelectMany(b => b == (byte)'~' ? new byte[] { 0xFF, 0xFE } : [b]).ToArray();
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var response = await Http.PostAsync(path, content);

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonNode.Parse(body)!["errors"]?.AsObject();
        Assert.True(errors is not null && errors.Any(e => e.Key.StartsWith(field, StringComparison.Ordinal)), $"no error names {field}: {body}");
        Assert.Contains("is not text", body);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.schedule WHERE name = 'utf8'"));
    }

    [Theory]
    [InlineData("""{"function":5}""", "function must be a JSON string.")]
    [InlineData("""{"function":"noop","queue":true}""", "queue must be a JSON string.")]
    [InlineData("""{"function":"noop","timeoutSeconds":"5"}""", "timeoutSeconds must be a JSON number.")]
    public async Task A_wrong_json_type_is_named_as_such_not_as_bad_text(string body, string detail)
    {
        var response = await Http.PostRawAsync("/jobs", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(detail, (await response.JsonAsync())["detail"]!.GetValue<string>());
    }

    // ---- Finding 7: the rate limiter and failed authentication, /metrics and /hangfire ----

    [Fact]
    public async Task Key_guessing_is_throttled_per_address_and_then_even_the_right_key_waits()
    {
        // 3 a minute: the next refill is 20 s away, far more than this test takes even on a busy machine.
        var (http, api) = await StartSecuredApiAsync(new() { ["Auth__MaxFailedAttemptsPerMinute"] = "3" });
        await using var _ = api;
        using var __ = http;

        var answers = new List<HttpStatusCode>();
        for (var guess = 0; guess < 8; guess++) answers.Add(await GetJobsAsync(http, $"guess-{guess}"));
        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Unauthorized, 3), answers.Take(3));
        Assert.All(answers.Skip(3), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));

        using var right = new HttpRequestMessage(HttpMethod.Get, "/jobs");
        Bearer(right, AdminKey);
        var refused = await http.SendAsync(right);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Auth:MaxFailedAttemptsPerMinute", (await refused.JsonAsync())["detail"]!.GetValue<string>());
        // The dashboard's door is the same door.
        var dashboard = new HttpRequestMessage(HttpMethod.Get, "/hangfire");
        Basic(dashboard, "another-guess");
        Assert.Equal(HttpStatusCode.TooManyRequests, (await http.SendAsync(dashboard)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task The_rate_limit_covers_refused_requests_metrics_and_the_dashboard()
    {
        var (http, api) = await StartSecuredApiAsync(new() { ["Api__RateLimitPerSecond"] = "1", ["Api__RateLimitBurst"] = "3" });
        await using var _ = api;
        using var __ = http;

        foreach (var path in new[] { "/metrics", "/hangfire", "/jobs" })
        {
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < 10; i++)
            {
                var request = new HttpRequestMessage(HttpMethod.Get, path);
                if (path != "/jobs") Bearer(request, AdminKey); // /jobs: anonymous, refused 401 — and counted
                statuses.Add((await http.SendAsync(request)).StatusCode);
            }
            Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
            await Task.Delay(3500); // the buckets refill
        }
        for (var i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_the_throttle_sees_each_client_so_a_guesser_locks_out_only_itself()
    {
        var (http, api) = await StartSecuredApiAsync(new() { ["Auth__MaxFailedAttemptsPerMinute"] = "3", ["Api__TrustedProxies__0"] = "127.0.0.1" });
        await using var _ = api;
        using var __ = http;

        for (var guess = 0; guess < 5; guess++) await GetJobsAsync(http, $"guess-{guess}", "203.0.113.7");
        Assert.Equal(HttpStatusCode.TooManyRequests, await GetJobsAsync(http, AdminKey, "203.0.113.7"));
        Assert.Equal(HttpStatusCode.OK, await GetJobsAsync(http, AdminKey, "203.0.113.8"));
    }

    [Fact]
    public async Task X_forwarded_for_from_an_address_not_listed_as_a_proxy_is_ignored_loopback_included()
    {
        // ASP.NET Core's defaults trust all of 127.0.0.0/8: any local process could have named any client and guessed on.
        var (http, api) = await StartSecuredApiAsync(new() { ["Auth__MaxFailedAttemptsPerMinute"] = "3", ["Api__TrustedProxies__0"] = "10.0.0.5" });
        await using var _ = api;
        using var __ = http;

        var answers = new List<HttpStatusCode>();
        for (var guess = 0; guess < 6; guess++) answers.Add(await GetJobsAsync(http, $"guess-{guess}", $"198.51.100.{guess}"));

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized,
            HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], answers);
    }

    // ---- Smaller findings of the second pass: %00 in a query, DNS rebinding ----

    [Fact]
    public async Task A_nul_in_a_query_or_path_is_400_and_leaves_every_later_request_whole()
    {
        // Before: 400, but the refused parameter left a pooled connection's prepared statement out of step, and a
        // later plain GET /jobs on it failed with 500 ("Received unexpected backend message DataRow").
        // Npgsql auto-prepares a statement after a few uses; the same statement then bound with U+0000 broke it.
        var statuses = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            var filter = i % 2 == 0 ? "function" : "queue";
            statuses.AddRange((await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Http.GetAsync($"/jobs?{filter}=noop&limit=1"))))
                .Select(r => ((int)r.StatusCode).ToString()));
            for (var j = 0; j < 6; j++) statuses.Add(((int)(await Http.GetAsync($"/jobs?{filter}=noop&limit=1")).StatusCode).ToString());
            var refused = await Http.GetAsync($"/jobs?{filter}=a%00b&limit=1");
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            for (var j = 0; j < 3; j++) statuses.Add(((int)(await Http.GetAsync($"/jobs?{filter}=noop&limit=1")).StatusCode).ToString());
        }
        Assert.All(statuses, s => Assert.Equal("200", s));
    }

    [Fact]
    public async Task Without_keys_a_request_addressed_to_another_host_name_is_refused_dns_rebinding()
    {
        async Task<HttpResponseMessage> AsAsync(string host, HttpRequestMessage request)
        {
            request.Headers.Host = $"{host}:{Fixture.ApiUrl.Port}";
            return await Http.SendAsync(request);
        }

        var submit = await AsAsync("evil.example", new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(new { function = "noop" }) });
        Assert.Equal(HttpStatusCode.MisdirectedRequest, submit.StatusCode);
        Assert.Equal("application/problem+json", submit.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.MisdirectedRequest, (await AsAsync("evil.example", new HttpRequestMessage(HttpMethod.Get, "/hangfire/jobs/scheduled"))).StatusCode);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        foreach (var loopback in new[] { "localhost", "127.0.0.1", "[::1]" })
            Assert.Equal(HttpStatusCode.OK, (await AsAsync(loopback, new HttpRequestMessage(HttpMethod.Get, "/functions"))).StatusCode);
    }

    // ---- Finding 8: Idempotency-Keys per API key ----

    [Fact]
    public async Task An_idempotency_key_belongs_to_the_api_key_that_sent_it()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;

        async Task<(Guid Id, bool Replayed)> SubmitAsync(string key)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(new { function = "math.square", args = new[] { 4 } }) };
            Bearer(request, key);
            request.Headers.Add("Idempotency-Key", "order-42");
            var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return ((await response.JsonAsync())["id"]!.GetValue<Guid>(), response.Headers.Contains("Idempotent-Replayed"));
        }

        var mine = await SubmitAsync(AdminKey);
        var theirs = await SubmitAsync(OtherAdminKey);
        var mineAgain = await SubmitAsync(AdminKey);

        Assert.NotEqual(mine.Id, theirs.Id);
        Assert.False(theirs.Replayed, "another tenant's key replayed this tenant's job");
        Assert.Equal(mine.Id, mineAgain.Id);
        Assert.True(mineAgain.Replayed);
    }

    // ---- What held, kept: the auth matrix over every route the OpenAPI document lists ----

    [Fact]
    public async Task Every_route_answers_each_kind_of_caller_as_its_role_allows()
    {
        // Wrong keys are this test's point: the failed-authentication throttle (its own test) is set out of reach.
        var (http, api) = await StartSecuredApiAsync(new() { ["Auth__MaxFailedAttemptsPerMinute"] = "100000" });
        await using var _ = api;
        using var __ = http;
        var document = JsonNode.Parse(await http.GetStringAsync("/swagger/v1/swagger.json"))!;
        var routes = document["paths"]!.AsObject()
            .SelectMany(p => p.Value!.AsObject().Select(m => (Method: m.Key.ToUpperInvariant(), Path: p.Key)))
            .Where(r => r.Method is "GET" or "POST" or "DELETE" or "PUT" or "PATCH")
            .ToList();
        Assert.True(routes.Count >= 12, $"only {routes.Count} routes in the OpenAPI document");
        var failures = new List<string>();

        foreach (var (method, template) in routes)
        {
            var path = template.Replace("{id}", Guid.NewGuid().ToString()).Replace("{name}", "red-team");
            if (method == "GET" && (path.Contains("/stream") || path.Contains("/result"))) path += "?timeout=0";
            var anonymous = template.StartsWith("/health", StringComparison.Ordinal);
            var write = method != "GET";
            foreach (var (caller, authorize) in new (string, Action<HttpRequestMessage>?)[]
                     {
                         ("no key", null), ("wrong key (Bearer)", r => Bearer(r, "wrong-key-0123456789")), ("wrong key (Basic)", r => Basic(r, "wrong")),
                         ("read-only (Bearer)", r => Bearer(r, ReaderKey)), ("read-only (Basic)", r => Basic(r, ReaderKey)),
                         ("admin (Bearer)", r => Bearer(r, AdminKey)), ("admin (Basic)", r => Basic(r, AdminKey)),
                     })
            {
                var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method is "POST" or "PUT" or "PATCH") request.Content = JsonContent.Create(new { });
                authorize?.Invoke(request);
                var status = (int)(await http.SendAsync(request)).StatusCode;
                var expected = anonymous ? "any but 401/403"
                    : caller.StartsWith("no key") || caller.StartsWith("wrong") ? "401"
                    : caller.StartsWith("read-only") && write ? "403"
                    : "any but 401/403";
                var ok = expected == "any but 401/403" ? status is not (401 or 403) && status < 500 : status.ToString() == expected;
                if (!ok) failures.Add($"{method} {path} with {caller}: {status}, expected {expected}");
            }
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job")); // every POST above was refused or invalid
    }

    [Fact]
    public async Task Header_tricks_do_not_open_a_door()
    {
        var (http, api) = await StartSecuredApiAsync();
        await using var _ = api;
        using var __ = http;

        async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, params (string Name, string Value)[] headers)
        {
            var request = new HttpRequestMessage(method, path);
            if (method == HttpMethod.Post) request.Content = JsonContent.Create(new { function = "noop" });
            foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
            return (await http.SendAsync(request)).StatusCode;
        }

        var basicUserOnly = Convert.ToBase64String(Encoding.UTF8.GetBytes(AdminKey + ":"));
        foreach (var (headers, path, why) in new[]
                 {
                     (new[] { ("Authorization", "Bearer") }, "/jobs", "an empty bearer"),
                     (new[] { ("Authorization", "Bearer " + AdminKey[..^1]) }, "/jobs", "a key one character short"),
                     (new[] { ("Authorization", "Bearer " + AdminKey + "x") }, "/jobs", "a key one character long"),
                     (new[] { ("Authorization", "Bearer " + new string('k', 16_000)) }, "/jobs", "a 16 KB key"),
                     (new[] { ("Authorization", "Basic " + basicUserOnly) }, "/jobs", "the key as Basic user name with no password"),
                     (new[] { ("Authorization", "Basic !!!not-base64") }, "/jobs", "Basic that is not base64"),
                     (new[] { ("Authorization", "Token " + AdminKey) }, "/jobs", "an unknown scheme"),
                     (new[] { ("X-Api-Key", AdminKey) }, "/jobs", "the key in another header"),
                     (new[] { ("Authorization", "Bearer " + ReaderKey), ("X-HTTP-Method-Override", "GET") }, "/jobs", "a method override"),
                     (new[] { ("Authorization", "Bearer " + ReaderKey), ("X-Original-URL", "/health/live"), ("X-Rewrite-URL", "/health/live") }, "/jobs", "a path override"),
                     (new[] { ("Authorization", "Bearer " + ReaderKey), ("X-Forwarded-For", "127.0.0.1"), ("X-Real-IP", "127.0.0.1") }, "/jobs", "a forwarded-for claim"),
                 })
        {
            var status = await SendAsync(HttpMethod.Post, path, headers);
            Assert.True(status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.BadRequest or HttpStatusCode.RequestHeaderFieldsTooLarge,
                $"{why}: {(int)status}");
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/jobs?api_key=" + AdminKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/JOBS"));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/jobs/../jobs"));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/hangfire/../jobs"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    // ---- What held, kept: callback URLs that try to reach a host off the allowlist (127.0.0.1 only here) ----

    public static TheoryData<string> OffTheAllowlist => new()
    {
        "http://10.0.0.1/hook", "http://167772161/hook", "http://0x0a000001/hook", "http://012.0.0.1/hook", "http://10.1/hook",
        "http://[::ffff:10.0.0.1]/hook", "http://[::1]/hook", "http://localhost/hook", "http://127.0.0.1.evil.example/hook",
        "http://127.0.0.1@evil.example/hook", "http://evil.example#@127.0.0.1/hook", "http://evil.example\\@127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "gopher://127.0.0.1:25/", "ftp://127.0.0.1/",
        "//127.0.0.1/hook", "/hook", "http://0.0.0.0/hook", "http://[::]/hook",
    };

    [Theory]
    [MemberData(nameof(OffTheAllowlist))]
    public async Task A_callback_url_off_the_allowlist_is_refused_in_any_spelling(string url)
    {
        var response = await Http.SubmitAsync(new { function = "noop", callbackUrl = url });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull((await response.JsonAsync())["errors"]?["callbackUrl"]);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    // ---- Kestrel's own refusals: problem+json where the framework lets the app answer ----

    [Fact]
    public async Task A_malformed_chunked_body_is_a_problem_json_400_and_an_oversized_header_never_a_5xx()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Fixture.ApiUrl.Host, Fixture.ApiUrl.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /jobs HTTP/1.1\r\nHost: {Fixture.ApiUrl.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{{}}\r\n0\r\n\r\n"));
        var answer = await ReadAnswerAsync(stream);
        Assert.StartsWith("HTTP/1.1 400", answer);
        Assert.Contains("application/problem+json", answer);

        // Headers beyond Kestrel's limit are refused by Kestrel itself, before the app runs: 431, never a 5xx.
        var big = new HttpRequestMessage(HttpMethod.Get, "/functions");
        big.Headers.TryAddWithoutValidation("X-Big", new string('a', 40_000));
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, (await Http.SendAsync(big)).StatusCode);
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    private static async Task<string> ReadAnswerAsync(NetworkStream stream)
    {
        var buffer = new byte[16_384];
        var text = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.ToString().Contains("\r\n\r\n") || !text.ToString().Contains('}'))
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0) break;
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return text.ToString();
    }
}
