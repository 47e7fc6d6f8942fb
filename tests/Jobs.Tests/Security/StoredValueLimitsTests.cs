using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Security;

/// <summary>
/// What one client stores cannot hurt another: every stored value keeps one depth limit (Jobs:MaxJsonDepth) and every
/// result a size limit (Jobs:MaxResultBytes), checked where the value is written — the API for arguments, the worker
/// for results, .NET and Python alike, jobs and map items alike — and whatever is stored is served, by every read
/// (the job, its result, listings, ?wait, a map's results and stream), even a value stored before the limits existed.
/// </summary>
public sealed class StoredValueLimitsTests(SystemFixture system) : SystemTest(system)
{
    private const int MaxDepth = 32;
    private const int MaxResultBytes = 16 * 1024 * 1024;

    private static string Nested(int depth) => new string('[', depth) + "0" + new string(']', depth);

    /// <summary>Deeper than this test's client would parse by default (64).</summary>
    private static readonly System.Text.Json.JsonSerializerOptions AnyDepth = new() { MaxDepth = 1024 };

    private static async Task<JsonObject> Json(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync(), documentOptions: new() { MaxDepth = 1024 })!.AsObject();

    private static string Text(JsonNode? node) => node?.ToJsonString(AnyDepth) ?? "null";

    /// <summary>Every read of the job answers (none with a 5xx), and what it answers.</summary>
    private async Task<(JsonObject Job, HttpResponseMessage Result, JsonObject Listed)> ReadEverywhereAsync(Guid id)
    {
        var get = await Http.GetAsync($"/jobs/{id}");
        Assert.True(get.StatusCode == HttpStatusCode.OK, $"GET /jobs/{id}: {(int)get.StatusCode} {await get.Content.ReadAsStringAsync()}");
        var waited = await Http.GetAsync($"/jobs/{id}?wait=5");
        Assert.Equal(HttpStatusCode.OK, waited.StatusCode);
        var result = await Http.GetAsync($"/jobs/{id}/result?timeout=5");
        Assert.True((int)result.StatusCode < 500, $"GET /jobs/{id}/result: {(int)result.StatusCode}");
        var list = await Http.GetAsync("/jobs?limit=5");
        Assert.True(list.StatusCode == HttpStatusCode.OK, $"GET /jobs?limit=5: {(int)list.StatusCode} {await list.Content.ReadAsStringAsync()}");
        var listed = (await Json(list))["items"]!.AsArray().Single(j => j!["id"]!.GetValue<Guid>() == id)!.AsObject();
        return (await Json(get), result, listed);
    }

    [Theory]
    [InlineData(33)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(1000)]
    public async Task A_result_nested_deeper_than_the_limit_fails_its_job_naming_the_limit_and_every_read_answers(int depth)
    {
        var submitted = await Http.SubmitAsync(new { function = "debug.nested", args = new[] { depth } }, "?wait=30");
        Assert.True(submitted.StatusCode == HttpStatusCode.OK, $"POST ?wait: {(int)submitted.StatusCode} {await submitted.Content.ReadAsStringAsync()}");
        var id = (await submitted.JsonAsync())["id"]!.GetValue<Guid>();

        var (job, result, listed) = await ReadEverywhereAsync(id);

        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("MaybeEncodingError", job["error"]!["type"]!.GetValue<string>());
        Assert.Contains("Jobs:MaxJsonDepth", job["error"]!["message"]!.GetValue<string>());
        Assert.Contains($"more than {MaxDepth} levels", job["error"]!["message"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.FailedDependency, result.StatusCode);
        Assert.Equal("MaybeEncodingError", (await result.JsonAsync())["exceptionType"]!.GetValue<string>());
        Assert.Equal("failed", listed["state"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(30)]
    [InlineData(31)]
    [InlineData(MaxDepth)]
    public async Task A_result_as_deep_as_the_limit_is_stored_and_served_by_every_read(int depth)
    {
        var submitted = await Http.SubmitAsync(new { function = "debug.nested", args = new[] { depth } }, "?wait=30");
        Assert.True(submitted.StatusCode == HttpStatusCode.OK, $"POST ?wait: {(int)submitted.StatusCode} {await submitted.Content.ReadAsStringAsync()}");
        var answer = await submitted.JsonAsync();
        var id = answer["id"]!.GetValue<Guid>();
        Assert.Equal("succeeded", answer["state"]!.GetValue<string>());
        Assert.Equal(Nested(depth), answer["result"].Compact());

        var (job, result, listed) = await ReadEverywhereAsync(id);

        Assert.Equal(Nested(depth), Text(job["result"]));
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(Nested(depth), Text((await Json(result))["result"]));
        Assert.Equal(Nested(depth), Text(listed["result"]));
    }

    [Fact]
    public async Task Arguments_are_held_to_the_same_depth_as_results()
    {
        // args is stored as the array around the values: a value 31 deep makes args 32 deep, the limit.
        var accepted = await Http.PostRawAsync("/jobs?wait=30", $$"""{"function":"debug.echo","args":[{{Nested(MaxDepth - 1)}}]}""");
        var deeper = await Http.PostRawAsync("/jobs", $$"""{"function":"math.square","args":[{{Nested(MaxDepth)}}]}""");
        var deepKwargs = await Http.PostRawAsync("/jobs", "{\"function\":\"math.square\",\"kwargs\":{\"x\":" + Nested(MaxDepth) + "}}");
        var deepItem = await Http.PostRawAsync("/maps", $$"""{"function":"math.square","items":[1,{{Nested(MaxDepth)}}]}""");

        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        var (job, _, listed) = await ReadEverywhereAsync((await accepted.JsonAsync())["id"]!.GetValue<Guid>());
        Assert.Equal($"[{Nested(MaxDepth - 1)}]", Text(job["args"]));
        Assert.Equal(Nested(MaxDepth - 1), Text(job["result"]));
        Assert.Equal($"[{Nested(MaxDepth - 1)}]", Text(listed["args"]));
        foreach (var (refused, field) in new[] { (deeper, "args"), (deepKwargs, "kwargs"), (deepItem, "items[1]") })
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = await refused.JsonAsync();
            Assert.Contains("Jobs:MaxJsonDepth", problem["detail"]!.GetValue<string>());
            Assert.NotNull(problem["errors"]![field]);
        }
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));
    }

    [Fact]
    public async Task Values_stored_deeper_than_the_limit_before_it_existed_are_still_served()
    {
        // Rows written before the limits (or under a larger limit): the API serves what is stored, as stored.
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 3 } });
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(id))["state"]!.GetValue<string>());
        var deep = Nested(200);
        await Database.ScalarAsync<int>("UPDATE jobs.job SET result = $1::json, args = $2::json, progress = $3::jsonb WHERE id = $4 RETURNING 1",
            deep, $"[{deep}]", $$"""{"fraction":1,"message":{{deep}}}""", id);
        var map = (await (await Http.PostAsJsonAsync("/maps?wait=30", new { function = "math.square", items = new[] { 1, 2 } })).JsonAsync())["id"]!.GetValue<Guid>();
        await Database.ScalarAsync<int>("UPDATE jobs.map_result SET result = $1::json WHERE map_id = $2 AND index = 1 RETURNING 1", deep, map);

        var (job, result, listed) = await ReadEverywhereAsync(id);

        Assert.Equal(deep, Text(job["result"]));
        Assert.Equal($"[{deep}]", Text(job["args"]));
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(deep, Text((await Json(result))["result"]));
        Assert.Equal(deep, Text(listed["result"]));
        var results = await Http.GetAsync($"/maps/{map}/results");
        Assert.Equal(HttpStatusCode.OK, results.StatusCode);
        Assert.Equal($"[1,{deep}]", Text((await Json(results))["results"]));
        var stream = (await Http.GetStringAsync($"/maps/{map}/stream")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(deep, Text(JsonNode.Parse(stream[1], documentOptions: new() { MaxDepth = 1024 })!["result"]));
    }

    [Fact]
    public async Task A_result_over_the_size_limit_fails_its_job_naming_the_limit_and_one_at_the_limit_round_trips_exactly()
    {
        // A string's JSON is its characters and two quotes: length MaxResultBytes - 2 is exactly at the limit.
        var over = await Http.SubmitOkAsync(new { function = "debug.text", args = new[] { MaxResultBytes - 1 } });
        var at = await Http.SubmitOkAsync(new { function = "debug.text", args = new object[] { MaxResultBytes - 2, "é" } });

        var failed = await Http.WaitForJobAsync(over, 60);
        Assert.Equal("failed", failed["state"]!.GetValue<string>());
        Assert.Equal("MaybeEncodingError", failed["error"]!["type"]!.GetValue<string>());
        Assert.Contains("Jobs:MaxResultBytes", failed["error"]!["message"]!.GetValue<string>());
        Assert.Null(await Database.ScalarAsync<string>("SELECT result::text FROM jobs.job WHERE id = $1", over));

        // The limit counts the bytes of the stored JSON text, where "é" is escaped (\u00E9): as many characters do not fit.
        var tooManyBytes = await Http.WaitForJobAsync(at, 60);
        Assert.Equal("failed", tooManyBytes["state"]!.GetValue<string>());
        Assert.Contains("Jobs:MaxResultBytes", tooManyBytes["error"]!["message"]!.GetValue<string>());

        var exact = await Http.SubmitOkAsync(new { function = "debug.text", args = new[] { MaxResultBytes - 2 } });
        var response = await Http.GetAsync($"/jobs/{exact}/result?timeout=60");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync();
        var expected = Encoding.UTF8.GetBytes($"{{\"ready\":true,\"result\":\"{new string('x', MaxResultBytes - 2)}\"}}");
        Assert.True(expected.AsSpan().SequenceEqual(body), $"the result came back changed ({body.Length} bytes, {expected.Length} expected)");
        var job = await (await Http.GetAsync($"/jobs/{exact}")).JsonAsync();
        Assert.Equal(MaxResultBytes - 2, job["result"]!.GetValue<string>().Length);
        // A page holds large results (copied from the database) beside failed jobs and small results (read with the page).
        var small = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "debug.text", args = new[] { 5 } }));
        var page = (await (await Http.GetAsync("/jobs?limit=5")).JsonAsync())["items"]!.AsArray().ToDictionary(j => j!["id"]!.GetValue<Guid>());
        Assert.Equal(MaxResultBytes - 2, page[exact]!["result"]!.GetValue<string>().Length);
        Assert.Equal("xxxxx", page[small["id"]!.GetValue<Guid>()]!["result"]!.GetValue<string>());
        Assert.Equal("failed", page[over]!["state"]!.GetValue<string>());
    }

    /// <summary>A client that asks for <paramref name="path"/> and then reads nothing.</summary>
    private async Task<System.Net.Sockets.TcpClient> StallAsync(string path)
    {
        var client = new System.Net.Sockets.TcpClient { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(Fixture.ApiUrl.Host, Fixture.ApiUrl.Port);
        await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        return client;
    }

    [Fact]
    public async Task Readers_that_stall_on_large_results_do_not_take_every_database_connection()
    {
        var large = await Http.SubmitOkAsync(new { function = "debug.text", args = new[] { MaxResultBytes - 2 } });
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(large, 60))["state"]!.GetValue<string>());
        var small = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 4 } });
        await Http.WaitForJobAsync(small);

        // More stalled readers than the API's pool has connections (Npgsql's 100): a copy of a large result holds one
        // while its client reads, but only Rows.MaxConcurrentCopies copies run at once.
        var stalled = new List<System.Net.Sockets.TcpClient>();
        try
        {
            for (var i = 0; i < 110; i++) stalled.Add(await StallAsync($"/jobs/{large}/result"));
            await Task.Delay(TimeSpan.FromSeconds(2));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync($"/jobs/{small}")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/jobs?limit=5&function=math.square")).StatusCode);
            }
            // (Reads of other large results wait for a copy to end meanwhile: see the README's limits.)
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"40 small reads beside 110 stalled ones took {clock.Elapsed}");
        }
        finally
        {
            foreach (var client in stalled) client.Dispose();
        }
    }

    [Fact]
    public async Task A_map_item_over_the_size_limit_fails_alone_naming_the_limit()
    {
        var map = (await (await Http.PostAsJsonAsync("/maps?wait=60", new { function = "debug.text", items = new[] { 3, MaxResultBytes, 2 } })).JsonAsync())
            ["id"]!.GetValue<Guid>();

        var view = await (await Http.GetAsync($"/maps/{map}?wait=60")).JsonAsync();
        Assert.Equal("failed", view["state"]!.GetValue<string>());
        Assert.Equal(2, view["succeeded"]!.GetValue<int>());
        var results = await Http.GetAsync($"/maps/{map}/results");
        Assert.Equal(HttpStatusCode.FailedDependency, results.StatusCode);
        var problem = await results.JsonAsync();
        Assert.Equal(1, problem["index"]!.GetValue<int>());
        Assert.Contains("Jobs:MaxResultBytes", problem["message"]!.GetValue<string>());
        var stream = (await Http.GetStringAsync($"/maps/{map}/stream")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal("xxx", stream[0]["result"]!.GetValue<string>());
        Assert.Equal("MaybeEncodingError", stream[1]["error"]!["type"]!.GetValue<string>());
        Assert.Equal("xx", stream[2]["result"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_maps_large_and_small_results_come_back_exactly_from_results_and_stream()
    {
        // Results larger than MapQueries.InlineResultBytes (64 KiB) are copied from the database one by one.
        int[] lengths = [3, 200_000, 1, 70_000];
        var map = (await (await Http.PostAsJsonAsync("/maps?wait=60", new { function = "debug.text", items = lengths })).JsonAsync())["id"]!.GetValue<Guid>();

        var results = await Http.GetAsync($"/maps/{map}/results");
        Assert.Equal(HttpStatusCode.OK, results.StatusCode);
        Assert.Equal(lengths, (await results.JsonAsync())["results"]!.AsArray().Select(r => r!.GetValue<string>().Length));
        foreach (var order in new[] { "input", "completion" })
        {
            var lines = (await Http.GetStringAsync($"/maps/{map}/stream?order={order}")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Equal(lengths.Length, lines.Count);
            Assert.All(lines, l => Assert.Equal(new string('x', lengths[l["index"]!.GetValue<int>()]), l["result"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task A_python_functions_result_keeps_the_same_limits_and_the_former_depth_key_still_works()
    {
        var module = Path.Combine(UserCode.TempFolder("jobs-limits-").FullName, "limits.py");
        await File.WriteAllTextAsync(module, "def nested(depth):\n    value = 0\n    for _ in range(depth):\n        value = [value]\n    return value\n\n" +
                                             "def text(n):\n    return 'x' * n\n");
        var queue = SystemFixture.PrivateQueue();
        // The worker reads the limits as the API does: Api:MaxJsonDepth, the former key, still sets the depth.
        await using var worker = Fixture.StartWorker("python-limits", [queue], environment: new()
        {
            ["Python__Modules__0__Path"] = module,
            ["Api__MaxJsonDepth"] = "8",
            ["Jobs__MaxResultBytes"] = "4096",
        });
        await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:limits.text")).StatusCode == HttpStatusCode.OK, "py:limits is offered", 60);

        async Task<JsonObject> Run(string function, int arg) =>
            await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function, args = new[] { arg }, queue }), 60);

        Assert.Equal(Nested(8), (await Run("py:limits.nested", 8))["result"].Compact());
        var deep = await Run("py:limits.nested", 9);
        Assert.Equal("MaybeEncodingError", deep["error"]!["type"]!.GetValue<string>());
        Assert.Contains("more than 8 levels deep", deep["error"]!["message"]!.GetValue<string>());
        var deeper = await Run("py:limits.nested", 500);
        Assert.Contains("Jobs:MaxJsonDepth", deeper["error"]!["message"]!.GetValue<string>());
        Assert.Equal(4094, (await Run("py:limits.text", 4094))["result"]!.GetValue<string>().Length);
        var large = await Run("py:limits.text", 4095);
        Assert.Equal("MaybeEncodingError", large["error"]!["type"]!.GetValue<string>());
        Assert.Contains("Jobs:MaxResultBytes", large["error"]!["message"]!.GetValue<string>());
        // .NET functions on the same worker keep them too.
        var net = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "debug.nested", args = new[] { 9 }, queue }), 60);
        Assert.Contains("more than 8 levels deep", net["error"]!["message"]!.GetValue<string>());
    }
}
