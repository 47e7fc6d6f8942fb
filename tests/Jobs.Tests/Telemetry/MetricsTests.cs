using System.Globalization;
using System.Text.RegularExpressions;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Telemetry;

/// <summary>OpenTelemetry metrics in Prometheus's format: the API's /metrics and a worker's Worker:MetricsPort.</summary>
public sealed class MetricsTests(SystemFixture system) : SystemTest(system)
{
    /// <summary>The value of the sample of <paramref name="metric"/> whose labels include all of <paramref name="labels"/>.</summary>
    private static double? Sample(string exposition, string metric, params string[] labels)
    {
        foreach (var line in exposition.Split('\n'))
        {
            var m = Regex.Match(line, @"^(\w+)\{(.*)\} (\S+)");
            if (m.Success && m.Groups[1].Value == metric && labels.All(l => m.Groups[2].Value.Contains(l, StringComparison.Ordinal)))
                return double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        return null;
    }

    [Fact]
    public async Task Workers_and_api_export_job_counts_durations_pickup_latency_and_queue_depth()
    {
        var queue = SystemFixture.PrivateQueue();
        var port = Network.FreePort();
        await using var worker = Fixture.StartWorker("metrics-worker", [queue], environment: new() { ["Worker__MetricsPort"] = $"{port}" });
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++) ids.Add(await Http.SubmitOkAsync(new { function = "math.square", args = new[] { i }, queue }));
        ids.Add(await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "counted" }, queue }));
        foreach (var id in ids) await Http.WaitForJobAsync(id);
        var waitingQueue = SystemFixture.PrivateQueue(); // no worker serves it: its job waits
        await Http.SubmitOkAsync(new { function = "noop", queue = waitingQueue });

        using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        string workerMetrics = "";
        await Eventually.TrueAsync(async () =>
        {
            workerMetrics = await scraper.GetStringAsync("/metrics");
            return Sample(workerMetrics, "jobs_finished_total", $"queue=\"{queue}\"", "function=\"math.square\"", "outcome=\"succeeded\"") == 3;
        }, "the worker counts 3 succeeded math.square runs", 20);
        Assert.Equal(1, Sample(workerMetrics, "jobs_finished_total", $"queue=\"{queue}\"", "function=\"debug.fail\"", "outcome=\"failed\""));
        Assert.Equal(3, Sample(workerMetrics, "jobs_started_total", $"queue=\"{queue}\"", "function=\"math.square\""));
        Assert.Equal(3, Sample(workerMetrics, "jobs_duration_seconds_count", $"queue=\"{queue}\"", "function=\"math.square\""));
        Assert.Equal(3, Sample(workerMetrics, "jobs_pickup_latency_seconds_count", $"queue=\"{queue}\"", "function=\"math.square\""));

        var apiMetrics = await Http.GetStringAsync("/metrics");
        Assert.Equal(3, Sample(apiMetrics, "jobs_submitted_total", $"queue=\"{queue}\"", "function=\"math.square\""));
        Assert.Equal(1, Sample(apiMetrics, "jobs_queue_depth", $"queue=\"{waitingQueue}\""));
        Assert.NotNull(Sample(apiMetrics, "http_server_request_duration_seconds_count"));
    }
}
