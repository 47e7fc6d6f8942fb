using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Queues;

/// <summary>
/// GET /queues, POST /queues/{name}/pause and /resume, and the warning for a queue no live worker serves: real API and
/// worker processes over HTTP.
/// </summary>
public sealed class QueueControlTests(SystemFixture system, Xunit.Abstractions.ITestOutputHelper output) : SystemTest(system)
{
    /// <summary>The queue as GET /queues lists it, failing the test if it is not listed.</summary>
    private async Task<JsonObject> QueueAsync(string name) =>
        await ListedAsync(name) ?? throw new Xunit.Sdk.XunitException($"GET /queues does not list {name}");

    private async Task<JsonObject?> ListedAsync(string name)
    {
        var response = await Http.GetAsync("/queues");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var all = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray();
        return all.Select(q => q!.AsObject()).SingleOrDefault(q => q["name"]!.GetValue<string>() == name);
    }

    /// <summary>A private queue and a worker process of 2 slots serving it, once the API sees the worker live.</summary>
    private async Task<(string Queue, Jobs.Launcher.Processes.ChildProcess Worker)> ServedQueueAsync(string name)
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = Fixture.StartWorker(name, [queue], workerCount: 2);
        await Eventually.TrueAsync(async () => (await ListedAsync(queue))?["workers"]!.AsArray().Count == 1, "the API sees the worker", 60);
        return (queue, worker);
    }

    private async Task<string> StateAsync(Guid id) => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["state"]!.GetValue<string>();

    [Fact]
    public async Task Paused_queue_starts_nothing_while_running_jobs_finish_and_other_queues_run_then_starts_within_a_second_of_resume()
    {
        var (queue, worker) = await ServedQueueAsync("pause-worker");
        await using var _ = worker;
        var running = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 1.5 }, queue });
        await Eventually.TrueAsync(async () => await StateAsync(running) == "processing", "the first job runs");

        var pause = await Http.PostAsync($"/queues/{queue}/pause", null);
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        Assert.True((await pause.JsonAsync())["paused"]!.GetValue<bool>());
        // Pausing twice changes nothing.
        Assert.Equal(HttpStatusCode.OK, (await Http.PostAsync($"/queues/{queue}/pause", null)).StatusCode);

        // Still accepted, with no warning: a worker serves the queue.
        var submit = await Http.SubmitAsync(new { function = "noop", queue });
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        Assert.False(submit.Headers.Contains("Warning"));
        var waiting = new List<Guid> { (await submit.JsonAsync())["id"]!.GetValue<Guid>() };
        for (var i = 0; i < 3; i++) waiting.Add(await Http.SubmitOkAsync(new { function = "noop", queue }));

        // The running job finishes; another queue's job runs meanwhile.
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(running))["state"]!.GetValue<string>());
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "noop" })))["state"]!.GetValue<string>());
        await Task.Delay(2000); // a worker polls its queues every second: two chances to take a job it must not
        foreach (var id in waiting)
        {
            var job = await (await Http.GetAsync($"/jobs/{id}")).JsonAsync();
            Assert.Equal("enqueued", job["state"]!.GetValue<string>());
            Assert.Equal(0, job["attempts"]!.GetValue<int>());
        }
        var paused = await QueueAsync(queue);
        Assert.True(paused["paused"]!.GetValue<bool>());
        Assert.Equal(4, paused["depth"]!.GetValue<long>());

        var resumedAt = DateTime.UtcNow;
        var resume = await Http.PostAsync($"/queues/{queue}/resume", null);
        Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        Assert.False((await resume.JsonAsync())["paused"]!.GetValue<bool>());

        foreach (var id in waiting)
        {
            var job = await Http.WaitForJobAsync(id);
            Assert.Equal("succeeded", job["state"]!.GetValue<string>());
            var delay = job["startedAt"].Time() - resumedAt;
            output.WriteLine($"resume → start of job {id}: {delay.TotalMilliseconds:F0} ms");
            Assert.True(delay < TimeSpan.FromSeconds(1), $"job {id} started {delay.TotalMilliseconds:F0} ms after the resume");
        }
        Assert.False((await QueueAsync(queue))["paused"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Queues_show_depth_oldest_age_paused_and_the_live_workers_serving_each()
    {
        var (queue, worker) = await ServedQueueAsync("queues-worker");
        await using var _ = worker;
        Assert.Equal(HttpStatusCode.OK, (await Http.PostAsync($"/queues/{queue}/pause", null)).StatusCode);
        await Http.SubmitOkAsync(new { function = "noop", queue });
        await Task.Delay(1500);
        await Http.SubmitOkAsync(new { function = "noop", queue });

        var view = await QueueAsync(queue);
        Assert.Equal(2, view["depth"]!.GetValue<long>());
        var age = view["oldestAgeSeconds"]!.GetValue<double>();
        Assert.InRange(age, 1.4, 30);
        Assert.True(view["paused"]!.GetValue<bool>());
        Assert.NotNull(view["pausedAt"]);
        Assert.True(view["declared"]!.GetValue<bool>()); // t_* in Jobs:Queues
        var workers = view["workers"]!.AsArray();
        Assert.Equal(2, Assert.Single(workers)!["slots"]!.GetValue<int>());
        Assert.Equal(2, view["slots"]!.GetValue<int>());
        Assert.Null(view["warning"]);

        // "default": empty here, served by the fixture's two worker processes of 2 slots each, not paused.
        var defaults = await QueueAsync("default");
        Assert.Equal(0, defaults["depth"]!.GetValue<long>());
        Assert.Equal(0, defaults["oldestAgeSeconds"]!.GetValue<double>());
        Assert.False(defaults["paused"]!.GetValue<bool>());
        Assert.Equal(2, defaults["workers"]!.AsArray().Count);
        Assert.Equal(4, defaults["slots"]!.GetValue<int>());

        // One queue alone, as the list shows it.
        var one = await (await Http.GetAsync($"/queues/{queue}")).JsonAsync();
        Assert.Equal(2, one["depth"]!.GetValue<long>());
    }

    [Fact]
    public async Task Job_for_a_declared_queue_no_live_worker_serves_is_accepted_with_a_warning_also_shown_in_queues()
    {
        var queue = SystemFixture.PrivateQueue(); // declared by Jobs:Queues "t_*", served by nothing

        var response = await Http.SubmitAsync(new { function = "noop", queue });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var warning = string.Join(' ', response.Headers.GetValues("Warning"));
        Assert.StartsWith("199 jobs \"", warning);
        Assert.Contains($"No live worker serves queue '{queue}'", warning);
        Assert.Equal("enqueued", (await response.JsonAsync())["state"]!.GetValue<string>());

        var view = await QueueAsync(queue);
        Assert.Equal(1, view["depth"]!.GetValue<long>());
        Assert.Empty(view["workers"]!.AsArray());
        Assert.Equal(0, view["slots"]!.GetValue<int>());
        Assert.Contains($"No live worker serves queue '{queue}'", view["warning"]!.GetValue<string>());

        // A map for it says so too.
        var map = await Http.PostAsync("/maps", System.Net.Http.Json.JsonContent.Create(new { function = "math.square", items = new[] { 1, 2 }, queue }));
        Assert.Equal(HttpStatusCode.Accepted, map.StatusCode);
        Assert.Contains($"No live worker serves queue '{queue}'", string.Join(' ', map.Headers.GetValues("Warning")));

        // A batch says so once per unserved queue it stored jobs for, and a schedule for it too.
        var other = SystemFixture.PrivateQueue();
        var batch = await Http.PostAsJsonAsync("/jobs/batch", new
        {
            jobs = new object[] { new { function = "noop", queue }, new { function = "noop", queue }, new { function = "noop", queue = other }, new { function = "noop" } },
        });
        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        var warnings = batch.Headers.GetValues("Warning").ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.Contains($"queue '{queue}'"));
        Assert.Contains(warnings, w => w.Contains($"queue '{other}'"));
        var schedule = await Http.PostAsJsonAsync("/schedules", new { name = "unserved-" + queue, cron = "0 0 1 1 *", function = "noop", queue });
        Assert.Equal(HttpStatusCode.OK, schedule.StatusCode);
        Assert.Contains($"No live worker serves queue '{queue}'", string.Join(' ', schedule.Headers.GetValues("Warning")));

        // A served queue: no warning.
        var served = await Http.SubmitAsync(new { function = "noop" });
        Assert.Equal(HttpStatusCode.Accepted, served.StatusCode);
        Assert.False(served.Headers.Contains("Warning"));
        Assert.Null((await QueueAsync("default"))["warning"]);
    }

    [Fact]
    public async Task Dashboard_shows_the_paused_queues()
    {
        // The menu entry "Paused queues" links to GET /queues and counts them, highlighted while any is paused.
        var before = await Http.GetStringAsync("/hangfire");
        Assert.Contains("Paused queues", before);
        Assert.Matches("""<a href="/queues">\s*Paused queues\s*<span data-metric="jobs:paused-queues" class="metric metric-default ">0</span>""", before);

        Assert.Equal(HttpStatusCode.OK, (await Http.PostAsync($"/queues/{SystemFixture.PrivateQueue()}/pause", null)).StatusCode);

        var page = await Http.GetStringAsync("/hangfire");
        Assert.Matches("""<span data-metric="jobs:paused-queues" class="metric metric-warning highlighted">1</span>""", page);
    }

    [Fact]
    public async Task Unknown_or_invalid_queues_are_still_refused_and_cannot_be_paused()
    {
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.SubmitAsync(new { function = "noop", queue = "nobody-declares-this" })).StatusCode);
        foreach (var path in new[] { "/queues/nobody-declares-this/pause", "/queues/nobody-declares-this/resume", "/queues/Not%20Valid/pause" })
        {
            var response = await Http.PostAsync(path, null);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.GetAsync("/queues/nobody-declares-this")).StatusCode);
        Assert.Equal(0, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.paused_queue"));
    }

    [Fact]
    public async Task Readonly_key_reads_queues_but_gets_403_on_pause_and_resume()
    {
        const string admin = "queues-admin-key-0123456789", reader = "queues-reader-key-0123456789";
        var (http, api) = await SecuredApi.StartAsync(Fixture, "queues-secured-api", [("admin", admin, "admin"), ("reader", reader, "readonly")]);
        await using var _ = api;
        using var __ = http;
        var queue = SystemFixture.PrivateQueue();

        async Task<HttpStatusCode> Send(HttpMethod method, string path, string? key)
        {
            using var request = new HttpRequestMessage(method, path);
            if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return (await http.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "/queues", null));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/queues", reader));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, $"/queues/{queue}/pause", reader));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, $"/queues/{queue}/resume", reader));
        Assert.Equal(0, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.paused_queue"));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Post, $"/queues/{queue}/pause", admin));
        Assert.Equal(1, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.paused_queue"));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Post, $"/queues/{queue}/resume", admin));
    }
}
