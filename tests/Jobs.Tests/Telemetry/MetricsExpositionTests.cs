using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Telemetry;

/// <summary>
/// What an operator scrapes, read over HTTP by a strict parser of Prometheus' text format (<see cref="PrometheusText"/>):
/// the API's /metrics and a worker's Worker:MetricsPort, with the series an operator needs and seconds buckets that
/// tell a 0.3 s job from a 10 s one.
/// </summary>
public sealed class MetricsExpositionTests(SystemFixture system) : SystemTest(system)
{
    /// <summary>The seconds buckets every duration histogram has (src/Jobs.Core/Telemetry/README.md).</summary>
    private static readonly double[] Buckets =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1200, 1800, 3600];

    private static async Task<PrometheusText> ScrapeAsync(HttpClient http, string path = "/metrics") =>
        PrometheusText.Parse(await http.GetStringAsync(path));

    [Fact]
    public async Task A_worker_scraped_from_its_first_instant_starts_and_serves_its_metrics()
    {
        // Prometheus does not wait for a worker to be ready: scrapes arrive while it starts. With OpenTelemetry's
        // HttpListener exporter, 5 of 12 starts scraped so exited ("PrometheusExporter HttpListener could not be started",
        // an ArgumentNullException in .NET's HttpListener accepting before its endpoint was ready).
        var queue = SystemFixture.PrivateQueue();
        for (var start = 1; start <= 6; start++)
        {
            var port = Network.FreePort();
            using var stop = new CancellationTokenSource();
            // Connections as fast as they go (threads of their own, no pause after a refusal), until it serves.
            var scrapes = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        socket.Connect(IPAddress.Loopback, port);
                        socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8);
                    }
                    catch (SocketException)
                    {
                    }
                }
            }, TaskCreationOptions.LongRunning)).ToArray();
            await using var worker = Fixture.StartWorker($"scraped-{start}", [queue], environment: new() { ["Worker__MetricsPort"] = $"{port}" });
            using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await Eventually.TrueAsync(async () =>
            {
                Assert.False(worker.HasExited, $"worker start {start}, scraped from its first instant, exited: {string.Join('\n', Fixture.Output.Where(l => l.StartsWith($"[scraped-{start}]", StringComparison.Ordinal)).TakeLast(20))}");
                try { return (await ScrapeAsync(scraper)).Find("jobs_worker_slots").Any(); }
                catch (HttpRequestException) { return false; }
            }, $"worker start {start} serves its metrics", 30);
            await stop.CancelAsync();
            await Task.WhenAll(scrapes);
            Assert.False(worker.HasExited);
        }
    }

    [Fact]
    public async Task Worker_and_api_expose_seconds_buckets_in_flight_queue_gauges_runtime_and_invariants()
    {
        var queue = SystemFixture.PrivateQueue();
        var waiting = SystemFixture.PrivateQueue(); // no worker serves it
        var port = Network.FreePort();
        // A long retry delay keeps a failed run's retry pending while we look.
        await using var worker = Fixture.StartWorker("exposition-worker", [queue], workerCount: 2, environment: new()
        {
            ["Worker__MetricsPort"] = $"{port}",
            ["Jobs__RetryBaseDelay"] = "00:10:00",
        });
        using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var q = ("queue", queue);

        var ten = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 10 }, queue });
        // While the 10 s job runs: one busy slot of two, seen by the worker and by the API.
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await ScrapeAsync(scraper)).Find("jobs_in_flight", q).Sum(s => s.Value) == 1;
            }
            catch (HttpRequestException)
            {
                return false; // the worker's listener is not up yet
            }
        }, "the worker shows the running 10 s job in flight", 20);
        var running = await ScrapeAsync(scraper);
        var workerLabel = running.Find("jobs_in_flight", q).Single().Labels["worker"];
        Assert.Equal(2, running.Value("jobs_worker_slots", ("worker", workerLabel)));
        await Eventually.TrueAsync(async () => (await ScrapeAsync(Http)).Find("jobs_queue_processing", q).Sum(s => s.Value) == 1,
            "the API counts the 10 s job as processing in its queue", 15);

        // On the other slot meanwhile: a 0.3 s job, a map of 3 items, a failed run whose retry waits.
        var short_ = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 0.3 }, queue });
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(short_))["state"]!.GetValue<string>());
        var map = await Http.PostAsJsonAsync("/maps", new { function = "math.square", items = new[] { 1, 2, 3 }, queue, chunksize = 1 });
        Assert.Equal(HttpStatusCode.Accepted, map.StatusCode);
        var mapId = (await map.JsonAsync())["id"]!.GetValue<Guid>();
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/maps/{mapId}?wait=5")).JsonAsync())["ready"]!.GetValue<bool>(),
            "the map finishes", 30);
        await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "retried later" }, queue, retries = 1 });
        await Http.SubmitOkAsync(new { function = "noop", queue = waiting });
        await Http.SubmitOkAsync(new { function = "noop", queue = waiting, delaySeconds = 600 });
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(ten))["state"]!.GetValue<string>());

        PrometheusText metrics = null!;
        await Eventually.TrueAsync(async () =>
        {
            metrics = await ScrapeAsync(scraper);
            return metrics.Find("jobs_finished_total", q, ("function", "time.sleep")).Sum(s => s.Value) == 2
                && metrics.Find("jobs_finished_total", q, ("function", "math.square")).Sum(s => s.Value) == 3
                && metrics.Find("jobs_in_flight", q).Sum(s => s.Value) == 0;
        }, "the worker counts both sleeps and the map's 3 items, and nothing in flight", 20);

        // Seconds buckets from 1 ms to 1 h on both duration histograms: the 0.3 s and the 10 s job in buckets of their own.
        var sleep = new[] { q, ("function", "time.sleep"), ("outcome", "succeeded") };
        Assert.Equal(Buckets, metrics.Buckets("jobs_duration_seconds", sleep));
        Assert.Equal(0, metrics.CountAtMost("jobs_duration_seconds", 0.25, sleep));
        Assert.Equal(1, metrics.CountAtMost("jobs_duration_seconds", 0.5, sleep));
        Assert.Equal(1, metrics.CountAtMost("jobs_duration_seconds", 10, sleep));
        Assert.Equal(2, metrics.CountAtMost("jobs_duration_seconds", 15, sleep));
        Assert.Equal(Buckets, metrics.Buckets("jobs_pickup_latency_seconds", q, ("function", "time.sleep")));
        // Map items counted like jobs: started, and their pickup latency recorded (it was for single jobs only).
        Assert.Equal(3, metrics.Value("jobs_started_total", q, ("function", "math.square")));
        Assert.Equal(3, metrics.Value("jobs_pickup_latency_seconds_count", q, ("function", "math.square")));
        Assert.Equal(0, metrics.Value("jobs_in_flight", q, ("worker", workerLabel)));
        // Invariant violations: a series at 0 from the first check on.
        Assert.Equal("counter", metrics.Types["jobs_invariant_violations_total"]);
        Assert.Equal(0, metrics.Find("jobs_invariant_violations_total").Sum(s => s.Value));
        // Runtime and process instrumentation.
        Assert.NotEmpty(metrics.Find("dotnet_gc_collections_total"));
        Assert.NotEmpty(metrics.Find("process_cpu_time_seconds_total"));
        Assert.NotEmpty(metrics.Find("process_memory_usage_bytes"));

        // The API: per-queue gauges with 0 for a served queue that is empty, live workers, runtime and process.
        PrometheusText api = null!;
        await Eventually.TrueAsync(async () =>
        {
            api = await ScrapeAsync(Http);
            return api.Find("jobs_queue_retry_pending", q).Sum(s => s.Value) == 1 && api.Find("jobs_queue_depth", ("queue", waiting)).Sum(s => s.Value) == 1;
        }, "the API counts the pending retry and the waiting job", 15);
        Assert.Equal(0, api.Value("jobs_queue_depth", q));
        Assert.Equal(0, api.Value("jobs_queue_oldest_age_seconds", q));
        Assert.Equal(0, api.Value("jobs_queue_processing", q));
        Assert.Equal(0, api.Value("jobs_queue_scheduled", q));
        Assert.Equal(1, api.Value("jobs_queue_workers", q));
        Assert.Single(api.Find("jobs_queue_depth", ("queue", "default")));
        Assert.Equal(3, api.Value("jobs_submitted_total", q, ("function", "math.square"))); // the map's items, as the workers count them // a known queue always has its series
        Assert.True(api.Value("jobs_queue_oldest_age_seconds", ("queue", waiting)) > 0);
        Assert.Equal(1, api.Value("jobs_queue_scheduled", ("queue", waiting)));
        Assert.Equal(0, api.Value("jobs_queue_workers", ("queue", waiting)));
        Assert.True(api.Value("jobs_workers_live") >= 1);
        Assert.NotEmpty(api.Find("dotnet_gc_collections_total"));
        Assert.NotEmpty(api.Find("process_cpu_time_seconds_total"));
        Assert.Equal("histogram", api.Types["http_server_request_duration_seconds"]);
    }

    [Fact]
    public async Task A_worker_with_the_wildcard_metrics_host_serves_every_address_as_in_a_container()
    {
        var port = Network.FreePort();
        // Compose's setting (docker/compose.yaml): OpenTelemetry's listener refused "*" (Invalid URI) and the worker died.
        await using var worker = Fixture.StartWorker("wildcard-metrics-worker", [SystemFixture.PrivateQueue()], environment: new()
        {
            ["Worker__MetricsPort"] = $"{port}",
            ["Worker__MetricsHost"] = "*",
        });
        // 127.0.0.2 reaches a listener on every interface, not one on 127.0.0.1; the Host header is a container's name.
        using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.2:{port}") };
        scraper.DefaultRequestHeaders.Host = $"worker:{port}";
        PrometheusText? metrics = null;
        await Eventually.TrueAsync(async () =>
        {
            Assert.False(worker.HasExited, "the worker exited:\n" + string.Join('\n', Fixture.Output.TakeLast(30)));
            try
            {
                metrics = await ScrapeAsync(scraper);
                // The listener answers from the worker's start; its slots gauge once its Hangfire server runs.
                return metrics.Find("jobs_worker_slots").Any();
            }
            catch (HttpRequestException)
            {
                return false; // not listening yet
            }
        }, "the worker serves its metrics, with its slots, on 127.0.0.2", 30);
        Assert.Equal(1, metrics!.Find("jobs_worker_slots").Single().Value);
    }

    [Fact]
    public async Task Launcher_with_a_metrics_port_gives_each_worker_its_own_and_every_worker_is_scraped()
    {
        var dataDirectory = Path.Combine(ProgramPaths.RepositoryRoot, ".data", "launcher-metrics-test-postgres");
        var api = $"http://127.0.0.1:{Network.FreePort()}";
        var metricsPort = TwoFreePorts();
        var output = new ConcurrentQueue<string>();
        var launcher = ChildProcess.Start("launcher", ProgramPaths.LauncherAssembly, new Dictionary<string, string?>
        {
            ["Launcher__DataDirectory"] = dataDirectory,
            ["Launcher__Workers"] = "2",
            ["Api__Urls"] = api,
            ["ConnectionStrings__Jobs"] = "",
            ["Worker__MetricsPort"] = $"{metricsPort}",
        }, output.Enqueue, errors: output.Enqueue);
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(output.Any(l => l.Contains("Jobs is running")) || launcher.HasExited),
                "the launcher reports it is running", 120);
            Assert.False(launcher.HasExited, string.Join('\n', output));
            var log = string.Join('\n', output);
            Assert.Contains($"worker-1: metrics at http://127.0.0.1:{metricsPort}/metrics", log);
            Assert.Contains($"worker-2: metrics at http://127.0.0.1:{metricsPort + 1}/metrics", log);

            using var http = new HttpClient { BaseAddress = new Uri(api) };
            for (var i = 0; i < 4; i++)
                Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync("/jobs?wait=30", new { function = "math.square", args = new[] { i } })).StatusCode);

            var workers = new HashSet<string>();
            double started = 0;
            await Eventually.TrueAsync(async () =>
            {
                workers.Clear();
                started = 0;
                foreach (var port in new[] { metricsPort, metricsPort + 1 })
                {
                    using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
                    var m = await ScrapeAsync(scraper);
                    workers.Add(m.Find("jobs_worker_slots").Single().Labels["worker"]);
                    started += m.Find("jobs_started_total", ("function", "math.square")).Sum(s => s.Value);
                }
                return started == 4;
            }, "the two workers' endpoints together count the 4 jobs", 20);
            Assert.Equal(2, workers.Count);
            Assert.DoesNotContain(output, l => l.Contains("Address already in use") || l.Contains("exited with code"));

            Posix.Terminate(launcher.Id);
            await launcher.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
            Assert.Equal(0, launcher.ExitCode);
        }
        finally
        {
            await launcher.DisposeAsync();
        }
    }

    /// <summary>A port p with p + 1 free too.</summary>
    private static int TwoFreePorts()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = Network.FreePort();
            if (port >= 65535) continue;
            try
            {
                using var next = new TcpListener(IPAddress.Loopback, port + 1);
                next.Start();
                return port;
            }
            catch (SocketException) when (attempt < 50)
            {
            }
        }
    }
}
