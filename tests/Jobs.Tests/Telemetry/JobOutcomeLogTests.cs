using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Telemetry;

/// <summary>
/// Every outcome of a job's run leaves one Information line in the worker's log — succeeded, failed, retried, canceled,
/// timed out — with its id, function, queue, details and trace id; in JSON as properties, its scopes as fields; a map
/// leaves one line per chunk, not per item. The workers log at the shipped default level (Information).
/// </summary>
public sealed class JobOutcomeLogTests(SystemFixture system) : SystemTest(system)
{
    private const string Category = "Jobs.Core.SingleJobs.Outcomes";

    /// <summary>
    /// appsettings.json's Default (the fixture's processes run at Warning), and the runner's Debug lines, logged in the job's
    /// scope. The formatter's options apply because appsettings.json names the formatter (Logging:Console:FormatterName
    /// simple): unnamed, the console logger takes IncludeScopes and the rest from its own obsolete options instead.
    /// </summary>
    private static Dictionary<string, string?> Logging(params (string Key, string Value)[] more)
    {
        var env = new Dictionary<string, string?>
        {
            ["Logging__LogLevel__Default"] = "Information",
            ["Logging__LogLevel__Jobs.Core.SingleJobs.JobRunner"] = "Debug",
            ["Logging__Console__FormatterOptions__IncludeScopes"] = "true",
        };
        foreach (var (key, value) in more) env[key] = value;
        return env;
    }

    private sealed record Submitted(Guid Id, string Function, string TraceId, string[] Outcomes, string? Detail);

    [Fact]
    public async Task Each_outcome_leaves_one_information_line_with_its_id_function_queue_details_and_trace_in_text()
    {
        var queue = SystemFixture.PrivateQueue();
        const string name = "outcome-text";
        await using var worker = Fixture.StartWorker(name, [queue], workerCount: 3,
            environment: Logging(("Logging__Console__FormatterOptions__SingleLine", "true")));

        foreach (var job in await RunEveryOutcomeAsync(queue))
        {
            var lines = await OutcomeLinesAsync(name, job, line => line.Contains(Category, StringComparison.Ordinal) && line.Contains(job.Id.ToString(), StringComparison.Ordinal));
            for (var i = 0; i < job.Outcomes.Length; i++)
            {
                var line = lines[i];
                Assert.StartsWith($"[{name}] info: {Category}", line);
                Assert.Contains($"Job {job.Id} {job.Outcomes[i]} ", line);
                Assert.Contains(job.Function, line);
                Assert.Contains($"queue {queue}", line);
                Assert.Contains($"trace {job.TraceId}", line);
                if (job.Outcomes[i] != "succeeded" && job.Outcomes[i] != "canceled") Assert.Contains(job.Detail!, line);
                if (job.Outcomes[i] == "retried") Assert.Matches(@"next attempt at \d{4}-\d\d-\d\dT", line);
            }
        }
        var mine = Fixture.Output.Where(l => l.StartsWith($"[{name}]", StringComparison.Ordinal)).ToList();
        // The job's scope renders as its fields, not as the type that holds them.
        Assert.Contains(mine, l => l.Contains("Running ", StringComparison.Ordinal) && l.Contains("JobId:", StringComparison.Ordinal));
        Assert.DoesNotContain(mine, l => l.Contains("System.Collections.Generic", StringComparison.Ordinal));
        Assert.DoesNotContain(mine, l => l.StartsWith($"[{name}] info: {Category}[1] Job {Guid.Empty}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_json_console_logging_the_fields_are_properties_and_scopes_are_fields()
    {
        var queue = SystemFixture.PrivateQueue();
        const string name = "outcome-json";
        await using var worker = Fixture.StartWorker(name, [queue], workerCount: 3,
            environment: Logging(("Logging__Console__FormatterName", "json")));

        foreach (var job in await RunEveryOutcomeAsync(queue))
        {
            var lines = await OutcomeLinesAsync(name, job, line => Json(line) is { } o && o["Category"]?.GetValue<string>() == Category
                                                                && o["State"]?["JobId"]?.GetValue<string>() == job.Id.ToString());
            for (var i = 0; i < job.Outcomes.Length; i++)
            {
                var entry = Json(lines[i])!;
                var state = entry["State"]!;
                Assert.Equal("Information", entry["LogLevel"]!.GetValue<string>());
                Assert.Equal(job.Outcomes[i], state["Outcome"]!.GetValue<string>());
                Assert.Equal(job.Function, state["Function"]!.GetValue<string>());
                Assert.Equal(queue, state["Queue"]!.GetValue<string>());
                Assert.Equal(job.TraceId, state["TraceId"]!.GetValue<string>());
                Assert.Matches("^[0-9a-f]{16}$", state["SpanId"]!.GetValue<string>());
                Assert.True(state["DurationMs"]!.GetValue<double>() >= 0);
                Assert.True(state["Attempt"]!.GetValue<int>() >= 1);
                if (job.Outcomes[i] is "failed" or "retried" or "timed out")
                {
                    Assert.Contains(job.Detail!, state["ExceptionType"]!.GetValue<string>() + ": " + state["ExceptionMessage"]!.GetValue<string>());
                }
                if (job.Outcomes[i] == "retried")
                    Assert.True(DateTime.Parse(state["RetryAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime() > DateTime.UtcNow.AddMinutes(-1));
                // Logged inside the job's scope: its fields are properties of the scope.
                var scope = entry["Scopes"]!.AsArray().Single(s => s?["JobId"] is not null)!;
                Assert.Equal(job.Id.ToString(), scope["JobId"]!.GetValue<string>());
                Assert.Equal(job.Function, scope["Function"]!.GetValue<string>());
            }
        }
        var mine = Fixture.Output.Where(l => l.StartsWith($"[{name}]", StringComparison.Ordinal)).ToList();
        var running = mine.Select(Json).FirstOrDefault(o => o?["Message"]?.GetValue<string>().StartsWith("Running ", StringComparison.Ordinal) == true);
        Assert.NotNull(running);
        Assert.Contains(running["Scopes"]!.AsArray(), s => s?["JobId"] is not null && s["Queue"]?.GetValue<string>() == queue);
        Assert.DoesNotContain(mine, l => l.Contains("System.Collections.Generic", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_map_leaves_one_line_per_chunk_with_its_counts_not_one_per_item()
    {
        var queue = SystemFixture.PrivateQueue();
        const string name = "outcome-map";
        await using var worker = Fixture.StartWorker(name, [queue], workerCount: 2, environment: Logging(("Logging__Console__FormatterName", "json")));
        // 200 items in 4 chunks of 50; every tenth fails (debug.nested refuses a depth over 1000).
        var items = Enumerable.Range(0, 200).Select(i => i % 10 == 0 ? 5000 : 1).ToArray();
        var response = await Http.PostAsJsonAsync("/maps", new { function = "debug.nested", items, chunksize = 50, queue });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.JsonAsync())["id"]!.GetValue<Guid>();
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/maps/{id}")).JsonAsync())["ready"]!.GetValue<bool>(), "the map ends", 60);

        List<JsonNode> Chunks() => [.. Fixture.Output.Where(l => l.StartsWith($"[{name}]", StringComparison.Ordinal)).Select(Json)
            .OfType<JsonNode>().Where(o => o["Category"]?.GetValue<string>() == "Jobs.Core.Maps.Outcomes" && o["State"]?["MapId"]?.GetValue<string>() == id.ToString())];
        await Eventually.TrueAsync(() => Task.FromResult(Chunks().Count >= 4), "every chunk's line is written", 15);
        await Task.Delay(500);
        var chunks = Chunks();
        Assert.Equal(4, chunks.Count);
        Assert.Equal([0, 1, 2, 3], chunks.Select(c => c["State"]!["Chunk"]!.GetValue<int>()).Order());
        Assert.All(chunks, c =>
        {
            Assert.Equal("Information", c["LogLevel"]!.GetValue<string>());
            Assert.Equal("done", c["State"]!["Outcome"]!.GetValue<string>());
            Assert.Equal(45, c["State"]!["Succeeded"]!.GetValue<int>());
            Assert.Equal(5, c["State"]!["Failed"]!.GetValue<int>());
            Assert.Equal(queue, c["State"]!["Queue"]!.GetValue<string>());
            Assert.False(string.IsNullOrEmpty(c["State"]!["ExceptionType"]!.GetValue<string>()));
        });
    }

    [Fact]
    public async Task The_outcome_lines_turn_down_with_their_category_and_nothing_else_does()
    {
        var queue = SystemFixture.PrivateQueue();
        const string quiet = "outcome-quiet", loud = "outcome-loud";
        // Jobs.Core.SingleJobs=Warning silences the runner's lines, outcomes included; the map's have a category of their own.
        await using var silenced = Fixture.StartWorker(quiet, [queue], environment: Logging(("Logging__LogLevel__Jobs.Core.SingleJobs", "Warning"),
            ("Logging__LogLevel__Jobs.Core.SingleJobs.JobRunner", "Warning")));
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "quiet" }, retries = 0, queue });
        Assert.Equal("failed", (await Http.WaitForJobAsync(id))["state"]!.GetValue<string>());
        await silenced.StopAsync(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(Fixture.Output, l => l.StartsWith($"[{quiet}]", StringComparison.Ordinal) && l.Contains(id.ToString(), StringComparison.Ordinal));

        // Jobs.Core.SingleJobs.Outcomes=Information brings them back under a Default of Warning (as the benchmark runs).
        await using var outcomesOnly = Fixture.StartWorker(loud, [queue], environment: new()
        {
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
            ["Logging__LogLevel__Jobs.Core.SingleJobs.Outcomes"] = "Information",
        });
        var again = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "loud" }, retries = 0, queue });
        Assert.Equal("failed", (await Http.WaitForJobAsync(again))["state"]!.GetValue<string>());
        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Count(l => l.StartsWith($"[{loud}] info: {Category}[2]", StringComparison.Ordinal)
                                                                               && l.Contains($"Job {again} failed", StringComparison.Ordinal)) == 1),
            "the failure's line is written under a Default of Warning", 15);
    }

    /// <summary>One job of each outcome on <paramref name="queue"/>, each with a trace of the client's own; returns when all have ended.</summary>
    private async Task<Submitted[]> RunEveryOutcomeAsync(string queue)
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var succeeded = await SubmitAsync(new { function = "math.square", args = new[] { 3 }, queue }, ["succeeded"], null);
        // A line break in a message stays in its line, escaped: it must not start a line that looks like another job's.
        var failed = await SubmitAsync(new { function = "debug.fail", args = new[] { $"boom {tag}\ninfo: {Category}[1] Job {Guid.Empty} succeeded" }, retries = 0, queue },
            ["failed"], $"DebugFailureException: boom {tag}\\ninfo: {Category}[1] Job {Guid.Empty} succeeded");
        var retried = await SubmitAsync(new { function = "debug.fail", args = new[] { "again " + tag }, retries = 1, queue }, ["retried", "failed"],
            "DebugFailureException: again " + tag);
        var timedOut = await SubmitAsync(new { function = "time.sleep", args = new[] { 30 }, timeoutSeconds = 0.5, retries = 0, queue }, ["timed out"],
            "JobTimeoutException");
        var canceled = await SubmitAsync(new { function = "time.sleep", args = new[] { 60 }, queue }, ["canceled"], null);
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/jobs/{canceled.Id}")).JsonAsync())["state"]!.GetValue<string>() == "processing",
            "the job to cancel is running", 30);
        Assert.Equal(HttpStatusCode.Accepted, (await Http.DeleteAsync($"/jobs/{canceled.Id}")).StatusCode);

        Submitted[] all = [succeeded, failed, retried, timedOut, canceled];
        string[] states = ["succeeded", "failed", "failed", "failed", "canceled"];
        for (var i = 0; i < all.Length; i++)
            Assert.Equal(states[i], (await Http.WaitForJobAsync(all[i].Id))["state"]!.GetValue<string>());
        return all;
    }

    private async Task<Submitted> SubmitAsync(object body, string[] outcomes, string? detail)
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(body) };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var json = JsonNode.Parse(JsonSerializer.Serialize(body))!;
        return new((await response.JsonAsync())["id"]!.GetValue<Guid>(), json["function"]!.GetValue<string>(), traceId, outcomes, detail);
    }

    /// <summary>The worker's outcome lines of <paramref name="job"/>: exactly as many as its outcomes, once they are all written.</summary>
    private async Task<List<string>> OutcomeLinesAsync(string worker, Submitted job, Func<string, bool> isOutcomeLine)
    {
        List<string> Lines() => [.. Fixture.Output.Where(l => l.StartsWith($"[{worker}] ", StringComparison.Ordinal) && isOutcomeLine(l))];
        await Eventually.TrueAsync(() => Task.FromResult(Lines().Count >= job.Outcomes.Length), $"{job.Function} job {job.Id} logs {string.Join(", ", job.Outcomes)}", 15);
        await Task.Delay(300); // no second line follows
        var lines = Lines();
        Assert.True(lines.Count == job.Outcomes.Length, $"{job.Function} job {job.Id}: expected {job.Outcomes.Length} outcome lines, got:\n{string.Join('\n', lines)}");
        return lines;
    }

    private static JsonNode? Json(string line)
    {
        var start = line.IndexOf("] {", StringComparison.Ordinal);
        if (start < 0) return null;
        try
        {
            return JsonNode.Parse(line[(start + 2)..]);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
