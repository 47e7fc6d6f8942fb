using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Maps;

/// <summary>map, starmap, imap, imap_unordered and canceling a map, through the real API and workers.</summary>
public sealed class MapTests(SystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private async Task<JsonObject> SubmitMapAsync(object body)
    {
        var response = await Http.PostAsJsonAsync("/maps", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        Assert.NotNull(response.Headers.Location);
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<JsonArray> ResultsAsync(Guid id)
    {
        var response = await Http.GetAsync($"/maps/{id}/results?timeout=60");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.JsonAsync())["results"]!.AsArray();
    }

    [Fact]
    public async Task Map_returns_results_in_input_order_with_at_most_one_hangfire_job_per_chunk()
    {
        var map = await SubmitMapAsync(new { function = "math.square", items = Enumerable.Range(0, 100), chunksize = 10 });
        var id = map["id"]!.GetValue<Guid>();
        Assert.Equal(100, map["total"]!.GetValue<int>());
        Assert.Equal(10, map["chunks"]!.GetValue<int>());

        var results = await ResultsAsync(id);

        Assert.Equal(Enumerable.Range(0, 100).Select(i => (double)i * i), results.Select(r => r!.GetValue<double>()));
        // Quick chunks are carried on with by the Hangfire job that ran the one before (MapScaleTests): never more than one each.
        var hangfireJobs = await Database.ScalarAsync<long>("SELECT count(*) FROM hangfire.job");
        Assert.InRange(hangfireJobs, 1L, 10L);
        var view = await (await Http.GetAsync($"/maps/{id}")).JsonAsync();
        Assert.Equal("succeeded", view["state"]!.GetValue<string>());
        Assert.Equal(100, view["succeeded"]!.GetValue<int>());
        Assert.Equal(0, view["pending"]!.GetValue<int>());
        Assert.True(view["successful"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Starmap_unpacks_each_item_into_positional_arguments()
    {
        var map = await SubmitMapAsync(new { function = "math.pow", items = new[] { new[] { 2, 3 }, new[] { 3, 2 }, new[] { 10, 0 } }, star = true });

        var results = await ResultsAsync(map["id"]!.GetValue<Guid>());

        Assert.Equal([8.0, 9.0, 1.0], results.Select(r => r!.GetValue<double>()));
    }

    [Fact]
    public async Task Default_chunksize_follows_python_ceil_len_over_four_times_worker_slots()
    {
        var pool = await (await Http.GetAsync("/pool")).JsonAsync();
        var slots = pool["servers"]!.AsArray()
            .Where(s => s!["queues"]!.AsArray().Any(q => q!.GetValue<string>() == "default"))
            .Sum(s => s!["workers"]!.GetValue<int>());

        var map = await SubmitMapAsync(new { function = "noop", items = Enumerable.Repeat(Array.Empty<int>(), 300), star = true });

        var chunksize = (int)Math.Ceiling(300 / (4.0 * slots));
        Assert.Equal(chunksize, map["chunksize"]!.GetValue<int>());
        Assert.Equal((300 + chunksize - 1) / chunksize, map["chunks"]!.GetValue<int>());
        Assert.Equal(300, (await ResultsAsync(map["id"]!.GetValue<Guid>())).Count);
    }

    [Fact]
    public async Task First_failure_is_reported_with_its_item_index_and_other_items_still_run()
    {
        var map = await SubmitMapAsync(new { function = "primes.count", items = new[] { 10, 20, 600_000_000, 30, 700_000_000 }, chunksize = 2 });
        var id = map["id"]!.GetValue<Guid>();

        var response = await Http.GetAsync($"/maps/{id}/results?timeout=60");

        Assert.Equal(HttpStatusCode.FailedDependency, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal(2, problem["index"]!.GetValue<int>());
        Assert.Equal("System.ArgumentOutOfRangeException", problem["exceptionType"]!.GetValue<string>());
        var view = await (await Http.GetAsync($"/maps/{id}")).JsonAsync();
        Assert.Equal("failed", view["state"]!.GetValue<string>());
        Assert.Equal(3, view["succeeded"]!.GetValue<int>());
        Assert.Equal(2, view["failed"]!.GetValue<int>());
    }

    [Fact]
    public async Task Items_that_do_not_bind_are_refused_naming_their_index_and_nothing_is_stored()
    {
        var response = await Http.PostAsJsonAsync("/maps", new { function = "math.square", items = new object[] { 1, 2, "three" } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.JsonAsync())["errors"]!.AsObject().ContainsKey("items[2]"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));

        var star = await Http.PostAsJsonAsync("/maps", new { function = "math.pow", items = new object[] { new[] { 1, 2 }, 3 }, star = true });
        Assert.True((await star.JsonAsync())["errors"]!.AsObject().ContainsKey("items[1]"));
        // An empty map is no longer refused: it is stored finished (MapScaleTests).
    }

    [Theory]
    [InlineData("input")]
    [InlineData("completion")]
    public async Task Stream_sends_one_ndjson_line_per_item_and_ends_when_all_are_done(string order)
    {
        var map = await SubmitMapAsync(new { function = "text.sha256", items = Enumerable.Range(0, 50).Select(i => $"item {i}"), chunksize = 5 });
        var id = map["id"]!.GetValue<Guid>();

        using var response = await Http.GetAsync($"/maps/{id}/stream?order={order}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        var indexes = lines.Select(l => JsonNode.Parse(l)!["index"]!.GetValue<int>()).ToList();
        Assert.Equal(50, lines.Length);
        if (order == "input") Assert.Equal(Enumerable.Range(0, 50), indexes);
        else Assert.Equal(Enumerable.Range(0, 50), indexes.Order());
        Assert.All(lines, l => Assert.Equal(64, JsonNode.Parse(l)!["result"]!.GetValue<string>().Length));
    }

    [Fact]
    public async Task Completion_order_streams_get_every_item_while_chunks_commit_concurrently()
    {
        // Chunks finish on four worker slots at once; an outcome numbered earlier can commit later than one
        // numbered after it. A stream that pages by that number must still see it, and end.
        const int items = 6000;
        var map = await SubmitMapAsync(new { function = "math.square", items = Enumerable.Range(0, items), chunksize = 10 });
        var id = map["id"]!.GetValue<Guid>();

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var streams = Enumerable.Range(0, 24).Select(async _ =>
        {
            using var response = await Http.GetAsync($"/maps/{id}/stream?order=completion", HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            var seen = new HashSet<int>();
            try
            {
                while (await reader.ReadLineAsync(cts.Token) is { } line)
                    if (line.Length > 0) seen.Add(JsonNode.Parse(line)!["index"]!.GetValue<int>());
            }
            catch (OperationCanceledException) { }
            return seen.Count;
        }).ToList();
        var counts = await Task.WhenAll(streams);

        Assert.False(cts.IsCancellationRequested, $"streams still open after 90 s, distinct items per stream: {string.Join(", ", counts)}");
        Assert.All(counts, c => Assert.Equal(items, c));
    }

    [Fact]
    public async Task An_item_past_the_maps_timeout_fails_alone_and_the_chunk_goes_on()
    {
        var clock = Stopwatch.StartNew();
        var map = await SubmitMapAsync(new { function = "time.sleep", items = new[] { 0.1, 60, 0.1 }, chunksize = 3, timeoutSeconds = 1 });
        var id = map["id"]!.GetValue<Guid>();

        using var response = await Http.GetAsync($"/maps/{id}/stream?order=input");
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the map took {clock.Elapsed}");
        Assert.Equal(3, lines.Count);
        Assert.Equal(0.1, lines[0]["result"]!.GetValue<double>());
        Assert.Equal("Jobs.Core.Execution.JobTimeoutException", lines[1]["error"]!["type"]!.GetValue<string>());
        Assert.Equal(0.1, lines[2]["result"]!.GetValue<double>());
        var view = await (await Http.GetAsync($"/maps/{id}?wait=10")).JsonAsync();
        Assert.Equal("failed", view["state"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.PostAsJsonAsync("/maps", new { function = "time.sleep", items = new[] { 1 }, timeoutSeconds = 0 })).StatusCode);
    }

    [Fact]
    public async Task Canceling_a_map_cancels_what_has_not_finished_and_stops_running_chunks()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = Fixture.StartWorker("map-cancel-worker", [queue], workerCount: 1);
        var map = await SubmitMapAsync(new { function = "time.sleep", items = Enumerable.Repeat(0.3, 40), chunksize = 20, queue });
        var id = map["id"]!.GetValue<Guid>();
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/maps/{id}")).JsonAsync())["succeeded"]!.GetValue<int>() >= 1,
            "the first item finished");

        var response = await Http.DeleteAsync($"/maps/{id}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var view = await response.JsonAsync();
        Assert.Equal("canceled", view["state"]!.GetValue<string>());
        Assert.True(view["canceled"]!.GetValue<int>() > 20);
        Assert.Equal(0, view["pending"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.Conflict, (await Http.DeleteAsync($"/maps/{id}")).StatusCode);
        var results = await Http.GetAsync($"/maps/{id}/results");
        Assert.Equal(HttpStatusCode.FailedDependency, results.StatusCode);
        await Task.Delay(1000);
        var after = await (await Http.GetAsync($"/maps/{id}")).JsonAsync();
        Assert.Equal(40, view["succeeded"]!.GetValue<int>() + view["canceled"]!.GetValue<int>());
        Assert.Equal(view["succeeded"]!.GetValue<int>(), after["succeeded"]!.GetValue<int>());
    }

    [Fact]
    public async Task Same_idempotency_key_returns_the_same_map()
    {
        HttpRequestMessage Request() => new(HttpMethod.Post, "/maps")
        {
            Content = JsonContent.Create(new { function = "math.square", items = new[] { 1, 2, 3 } }),
            Headers = { { "Idempotency-Key", "map-key-1" } },
        };
        var first = await (await Http.SendAsync(Request())).JsonAsync();
        var second = await Http.SendAsync(Request());

        Assert.Equal(first["id"]!.GetValue<Guid>(), (await second.JsonAsync())["id"]!.GetValue<Guid>());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));
    }

    [Fact]
    public async Task A_hundred_thousand_item_map_submits_and_returns_its_ordered_results()
    {
        var clock = Stopwatch.StartNew();
        var map = await SubmitMapAsync(new { function = "math.square", items = Enumerable.Range(0, 100_000) });
        var submitted = clock.Elapsed;

        var results = await ResultsAsync(map["id"]!.GetValue<Guid>());
        output.WriteLine($"100,000 items: submitted in {submitted.TotalMilliseconds:F0} ms, all results after {clock.Elapsed.TotalMilliseconds:F0} ms");

        Assert.Equal(100_000, results.Count);
        for (var i = 0; i < results.Count; i++) Assert.Equal((double)i * i, results[i]!.GetValue<double>());
        Assert.True(map["chunks"]!.GetValue<int>() < 1000, "one Hangfire job per chunk, not per item");
    }
}
