using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Security;

/// <summary>
/// 10,000 generated hostile requests: malformed and random JSON, wrong types, huge numbers and strings, deep
/// nesting, invalid UTF-8 (whole bodies, and inside one string of otherwise valid JSON), numbers sent as strings, odd ids and
/// paths, SQL- and script-like strings, wrong content types and methods.
/// The service must never answer 5xx, must stay healthy, and jobs accepted before must be intact and complete.
/// </summary>
public sealed class FuzzTests(SystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private const int Requests = 10_000;
    private static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(120);

    private static readonly string[] Hostile =
    [
        "' OR 1=1 --", "'; DROP TABLE jobs.job; --", "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "../../etc/passwd",
        "${jndi:ldap://127.0.0.1/a}", "{{7*7}}", "%00", "\\u0000", "😀🔥", "\u202e", new string('A', 10_000), "", " ", "null", "NaN",
        "Infinity", "-0", "1e309", "0x10", "math.square ", "MATH.SQUARE", "math.square\n", "debug.crash", "hangfire", "jobs.job",
    ];

    private static readonly string[] Numbers =
        ["0", "-1", "1e309", "-1e309", "1e-400", "123456789012345678901234567890", "1.7976931348623157e308", "-0.0", "2.5", "9007199254740993"];

    private static readonly string[] Functions = ["math.square", "math.pow", "primes.count", "text.sha256", "noop", "time.sleep", "cpu.spin", "progress.demo", "debug.fail"];

    [Fact]
    public async Task Ten_thousand_hostile_requests_get_no_5xx_and_leave_accepted_jobs_intact()
    {
        var before = new List<(Guid Id, int X)>();
        for (var i = 0; i < 10; i++) before.Add((await Http.SubmitOkAsync(new { function = "math.square", args = new[] { i + 100 }, queue = "t_fuzz_before" }), i + 100));

        var random = new Random(20261129);
        var cases = Enumerable.Range(0, Requests).Select(_ => Generate(random)).ToList();
        var failures = new ConcurrentQueue<string>();
        var statuses = new ConcurrentDictionary<int, int>();
        var clock = Stopwatch.StartNew();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 8 }) { BaseAddress = Fixture.ApiUrl, Timeout = TimeSpan.FromSeconds(30) };
        var sent = 0;
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (c, ct) =>
        {
            if (clock.Elapsed > TimeLimit) return;
            using var request = c.Build();
            using var response = await http.SendAsync(request, ct);
            Interlocked.Increment(ref sent);
            statuses.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
            if ((int)response.StatusCode >= 500)
                failures.Enqueue($"{(int)response.StatusCode} for {c}: {await response.Content.ReadAsStringAsync(ct)}");
        });
        output.WriteLine($"{sent} requests in {clock.Elapsed.TotalSeconds:F1} s; statuses: " +
                         string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}")));

        Assert.True(sent >= Requests, $"only {sent} requests within {TimeLimit}");
        Assert.True(failures.IsEmpty, $"{failures.Count} 5xx answers, e.g.:\n{string.Join("\n", failures.Take(5))}");
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/health/ready")).StatusCode);

        // The jobs accepted before: untouched, and they complete once a worker serves their queue.
        await using var worker = Fixture.StartWorker("after-fuzz", ["t_fuzz_before"]);
        foreach (var (id, x) in before)
        {
            var job = await Http.WaitForJobAsync(id, 60);
            Assert.Equal("succeeded", job["state"]!.GetValue<string>());
            Assert.Equal(x, job["args"]![0]!.GetValue<int>());
            Assert.Equal((double)x * x, job["result"]!.GetValue<double>());
        }
    }

    private sealed record Case(string Method, string Path, byte[]? Body, string? ContentType, string? IdempotencyKey)
    {
        public HttpRequestMessage Build()
        {
            var request = new HttpRequestMessage(new HttpMethod(Method), Path);
            if (Body is not null)
            {
                request.Content = new ByteArrayContent(Body);
                if (ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
            if (IdempotencyKey is not null) request.Headers.TryAddWithoutValidation("Idempotency-Key", IdempotencyKey);
            return request;
        }

        public override string ToString() =>
            $"{Method} {Path} [{ContentType}] {(Body is null ? "" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 300)))}";
    }

    /// <summary>What can travel in a header: printable ASCII, at most 300 characters.</summary>
    private static string Ascii(string s) => new string(s.Where(c => c >= 32 && c < 127).Take(300).ToArray()) is { Length: > 0 } a ? a : "k";

    private static T Pick<T>(Random r, IReadOnlyList<T> items) => items[r.Next(items.Count)];

    private static string JsonString(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    private static string RandomValue(Random r, int depth = 0) => r.Next(depth > 3 ? 6 : 9) switch
    {
        0 => Pick(r, Numbers),
        1 => JsonString(Pick(r, Hostile)),
        2 => "null",
        3 => r.Next(2) == 0 ? "true" : "false",
        4 => r.Next(-1000, 1000).ToString(),
        5 => JsonString(new string((char)r.Next(32, 0x2FFF), r.Next(0, 50))),
        6 => "[" + string.Join(",", Enumerable.Range(0, r.Next(0, 4)).Select(_ => RandomValue(r, depth + 1))) + "]",
        7 => "{" + string.Join(",", Enumerable.Range(0, r.Next(0, 4)).Select(_ => JsonString(Pick(r, Hostile)) + ":" + RandomValue(r, depth + 1))) + "}",
        _ => new string('[', r.Next(20, 200)) + new string(']', r.Next(0, 200)),
    };

    private static Case Generate(Random r)
    {
        string Id() => r.Next(4) switch
        {
            0 => Guid.NewGuid().ToString(),
            1 => Uri.EscapeDataString(Pick(r, Hostile)),
            2 => "00000000-0000-0000-0000-000000000000",
            _ => new string('9', r.Next(1, 2000)),
        };
        switch (r.Next(16))
        {
            case 14: // valid JSON but for bytes that are not UTF-8 inside one string (args, kwargs, items, names)
                var template = Pick(r, new[]
                {
                    """{"function":"text.sha256","args":["~"]}""", """{"function":"text.sha256","args":["x"],"kwargs":{"~":1}}""",
                    """{"function":"math.square","args":[{"a":["~"]}]}""", """{"function":"~","args":[]}""", """{"function":"noop","queue":"~"}""",
                    """{"function":"noop","callbackUrl":"http://127.0.0.1/~"}""",
                });
                var invalid = Pick(r, new[] { new byte[] { 0xFF }, [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82] });
                var path = Pick(r, new[] { "/jobs", "/jobs", "/maps", "/schedules" });
                if (path == "/maps") template = template.Replace("\"args\":", "\"items\":");
                if (path == "/schedules") template = template.Replace("{\"function\"", "{\"name\":\"fuzz~\",\"cron\":\"0 0 1 1 *\",\"function\"");
                var utf8 = Encoding.UTF8.GetBytes(template).SelectMany(b => b == (byte)'~' ? invalid : [b]).ToArray();
                return new("POST", path, utf8, "application/json", null);
            case 15: // numbers sent as strings, and strings where numbers go
                var field = Pick(r, new[] { "delaySeconds", "timeoutSeconds", "retries" });
                var text = Pick(r, new[] { "\"5\"", "\"NaN\"", "\"Infinity\"", "\"-0\"", "\"1e309\"", "\"0x10\"", "\"\"", "[1]", "{}", "true" });
                return r.Next(2) == 0
                    ? new("POST", "/jobs", Encoding.UTF8.GetBytes($$"""{"function":"math.square","args":[2],"{{field}}":{{text}}}"""), "application/json", null)
                    : new("POST", "/maps", Encoding.UTF8.GetBytes($$"""{"function":"math.square","items":[1,2],"{{(field == "timeoutSeconds" ? field : "chunksize")}}":{{text}}}"""), "application/json", null);
            case 0: // random bytes, sometimes invalid UTF-8
                var bytes = new byte[r.Next(0, 2000)];
                r.NextBytes(bytes);
                return new("POST", Pick(r, new[] { "/jobs", "/maps", "/schedules" }), bytes, "application/json", null);
            case 1: // a valid request cut short
                var valid = $$"""{"function":"math.square","args":[{{r.Next()}}],"kwargs":{},"queue":"default"}""";
                return new("POST", "/jobs", Encoding.UTF8.GetBytes(valid[..r.Next(0, valid.Length)]), "application/json", null);
            case 2: // every field with a random (usually wrong) type or value
                var fields = new[] { "function", "args", "kwargs", "queue", "delaySeconds", "runAt", "timeoutSeconds", "retries", "callbackUrl", Pick(r, Hostile) };
                var body = "{" + string.Join(",", fields.Where(_ => r.Next(3) > 0).Select(f => JsonString(f) + ":" + RandomValue(r))) + "}";
                return new("POST", "/jobs" + (r.Next(4) == 0 ? "?wait=" + Pick(r, Numbers) : ""), Encoding.UTF8.GetBytes(body), "application/json",
                    r.Next(5) == 0 ? Ascii(Pick(r, Hostile)) : null);
            case 3: // a real function with hostile arguments
                var args = "[" + string.Join(",", Enumerable.Range(0, r.Next(0, 3)).Select(_ => RandomValue(r))) + "]";
                var function = Pick(r, Functions);
                if (function is "time.sleep" or "cpu.spin" or "progress.demo") args = "[0]"; // keep the workers free
                return new("POST", "/jobs", Encoding.UTF8.GetBytes($$"""{"function":{{JsonString(function)}},"args":{{args}},"kwargs":{{RandomValue(r)}}}"""), "application/json", null);
            case 4: // deep nesting
                var depth = r.Next(10, 3000);
                return new("POST", "/jobs", Encoding.UTF8.GetBytes($$"""{"function":"text.sha256","args":[{{new string('[', depth)}}{{new string(']', depth)}}]}"""), "application/json", null);
            case 5: // wrong content types
                return new("POST", "/jobs", Encoding.UTF8.GetBytes("""{"function":"noop"}"""),
                    Pick(r, new[] { "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/x-www-form-urlencoded", "", "*/*" }), null);
            case 6: // odd ids and paths
                return new(Pick(r, new[] { "GET", "DELETE", "GET" }), Pick(r, new[] { "/jobs/", "/maps/", "/jobs/{0}/result?timeout=", "/maps/{0}/stream?order=", "/functions/", "/schedules/" }).Replace("{0}", Id()) + Id(), null, null, null);
            case 7: // list filters
                return new("GET", $"/jobs?state={Uri.EscapeDataString(Pick(r, Hostile))}&function={Uri.EscapeDataString(Pick(r, Hostile))}&queue={Uri.EscapeDataString(Pick(r, Hostile))}&limit={Uri.EscapeDataString(Pick(r, Numbers))}&cursor={Uri.EscapeDataString(Pick(r, Hostile))}", null, null, null);
            case 8: // waits and timeouts
                return new("GET", $"/jobs/{Guid.NewGuid()}?wait={Uri.EscapeDataString(Pick(r, Numbers.Concat(Hostile).ToArray()))}", null, null, null);
            case 9: // maps
                var items = r.Next(3) == 0 ? RandomValue(r) : "[" + string.Join(",", Enumerable.Range(0, r.Next(0, 20)).Select(_ => RandomValue(r))) + "]";
                return new("POST", "/maps", Encoding.UTF8.GetBytes($$"""{"function":{{JsonString(Pick(r, Functions.Concat(Hostile).ToArray()))}},"items":{{items}},"star":{{RandomValue(r)}},"chunksize":{{Pick(r, Numbers)}}}"""), "application/json", null);
            case 10: // schedules
                return new("POST", "/schedules", Encoding.UTF8.GetBytes($$"""{"name":{{JsonString(Pick(r, Hostile))}},"cron":{{JsonString(Pick(r, Hostile.Concat(["* * * * *", "61 * * * *", "* * * * * * *"]).ToArray()))}},"timeZone":{{JsonString(Pick(r, Hostile))}},"function":"noop"}"""), "application/json", null);
            case 11: // methods the routes do not have
                return new(Pick(r, new[] { "PUT", "PATCH", "OPTIONS", "TRACE" }), Pick(r, new[] { "/jobs", "/maps", "/functions", "/pool", "/health/ready" }), Encoding.UTF8.GetBytes("{}"), "application/json", null);
            case 12: // huge strings and numbers inside otherwise valid requests
                var huge = JsonString(new string('x', r.Next(1000, 900_000)));
                return new("POST", "/jobs", Encoding.UTF8.GetBytes("{\"function\":\"text.sha256\",\"args\":[" + huge + "],\"kwargs\":{\"rounds\":" + Pick(r, Numbers) + "}}"), "application/json", null);
            default: // idempotency keys, odd and long
                var key = r.Next(3) == 0 ? new string('k', r.Next(200, 400)) : Pick(r, Hostile);
                return new("POST", "/jobs", Encoding.UTF8.GetBytes("""{"function":"noop"}"""), "application/json", Ascii(key));
        }
    }
}
