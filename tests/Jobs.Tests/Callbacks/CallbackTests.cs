using System.Net;
using System.Text.Json.Nodes;
using Jobs.Core.Callbacks;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Callbacks;

/// <summary>callback / error_callback: a signed POST of the finished job to a real local HTTP listener.</summary>
public sealed class CallbackTests(SystemFixture system) : SystemTest(system), IDisposable
{
    private readonly CallbackReceiver _receiver = new();

    public void Dispose() => _receiver.Dispose();

    [Fact]
    public async Task Finished_job_is_posted_to_its_callback_url_signed_with_hmac()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 8 }, callbackUrl = _receiver.Url + "done" });

        var delivery = await _receiver.NextAsync();

        Assert.Equal("/done", delivery.Path);
        Assert.Equal(CallbackSender.Sign(delivery.Body, SystemFixture.CallbackSecret), delivery.Signature);
        var job = JsonNode.Parse(delivery.Body)!;
        Assert.Equal(id, job["id"]!.GetValue<Guid>());
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(64, job["result"]!.GetValue<double>());
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["callback"]?["status"]?.GetValue<string>() == "delivered",
            "the job records the delivery");
    }

    [Fact]
    public async Task A_delivery_recorded_is_not_sent_again_when_its_sender_runs_again()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 3 }, callbackUrl = _receiver.Url });
        await _receiver.NextAsync();
        var sender = await Database.ScalarAsync<long>(
            "SELECT id FROM hangfire.job WHERE arguments::text LIKE '%' || $1 || '%' AND invocationdata::text LIKE '%CallbackSender%'", id.ToString());
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT statename FROM hangfire.job WHERE id = $1", sender) == "Succeeded",
            "the sender ends");

        // Its worker killed (or cut off) after recording the delivery, before Hangfire's Succeeded: the sender is still
        // Processing, and the rescuer gives its fetch back to the queue.
        await Database.ScalarAsync<int>("""
            WITH processing AS (UPDATE hangfire.job SET statename = 'Processing' WHERE id = $1),
                 given_back AS (INSERT INTO hangfire.jobqueue (jobid, queue) SELECT $1, data->>'Queue' FROM hangfire.state WHERE jobid = $1 AND name = 'Enqueued')
            SELECT 1
            """, sender);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM hangfire.jobqueue WHERE jobid = $1", sender) == 0
            && await Database.ScalarAsync<string>("SELECT statename FROM hangfire.job WHERE id = $1", sender) == "Succeeded", "the sender runs again and ends");

        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _receiver.Received);
        Assert.Equal("delivered", (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["callback"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Failed_job_is_posted_too_and_a_refused_delivery_is_retried()
    {
        _receiver.FailFirst = 2;
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "nope" }, callbackUrl = _receiver.Url });

        var delivery = await _receiver.NextAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("failed", JsonNode.Parse(delivery.Body)!["state"]!.GetValue<string>());
        Assert.Equal(3, delivery.Attempt);
        var job = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["callback"]!["attempts"]!.GetValue<int>() == 3,
            "three attempts recorded");
    }

    [Fact]
    public async Task Callback_to_a_host_outside_the_allowlist_is_refused_at_submit_without_revealing_the_allowlist()
    {
        var response = await Http.SubmitAsync(new { function = "noop", callbackUrl = "http://localhost:1/x" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        // The allowlist tells an attacker which internal hosts the service trusts: it is the operator's to know.
        Assert.DoesNotContain(SystemFixture.CallbackHost, body);
        var problem = JsonNode.Parse(body)!;
        Assert.True(problem["errors"]!.AsObject().ContainsKey("callbackUrl"));
        var detail = problem["detail"]!.GetValue<string>();
        Assert.Contains("callbackUrl", detail);
        Assert.Contains("localhost:1", detail);
    }

    [Fact]
    public async Task Without_an_allowlist_callbacks_are_refused_with_a_clear_400()
    {
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        await using var api = Fixture.StartApi("api-no-callbacks", url, new() { ["Callbacks__AllowedHosts__0"] = null, ["Callbacks__Secret"] = "" });
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => "", TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = url };

        var response = await http.SubmitAsync(new { function = "noop", callbackUrl = _receiver.Url });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal("Callbacks are disabled", problem["title"]!.GetValue<string>());
        Assert.True(problem["errors"]!.AsObject().ContainsKey("callbackUrl"));
    }

    [Fact]
    public async Task A_callbackUrl_PostgreSQL_refuses_fails_alone_and_leaves_other_submissions_whole()
    {
        // A fresh API: its connections have not yet prepared the statements the refused one breaks.
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        await using var api = Fixture.StartApi("api-nul-callback", url, []);
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => "", TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = url };
        var bad = $$"""{"function":"noop","callbackUrl":"{{_receiver.Url}}a\u0000b"}""";

        var accepted = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            for (var b = 0; b < 2; b++)
                Assert.Equal(HttpStatusCode.BadRequest, (await http.PostRawAsync("/jobs", bad)).StatusCode);
            var good = await http.SubmitAsync(new { function = "noop" });
            Assert.True(good.StatusCode == HttpStatusCode.Accepted, $"round {i}: {(int)good.StatusCode} {await good.Content.ReadAsStringAsync()}");
            accepted.Add((await good.JsonAsync())["id"]!.GetValue<Guid>());
        }

        Assert.Equal(12L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        foreach (var id in accepted) Assert.Equal("succeeded", (await http.WaitForJobAsync(id))["state"]!.GetValue<string>());
    }
}
