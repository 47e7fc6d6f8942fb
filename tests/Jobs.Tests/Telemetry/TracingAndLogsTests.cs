using System.Diagnostics;
using System.Net.Http.Json;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Telemetry;

/// <summary>A job's run in the worker continues the submitting request's trace, and its log lines carry the job id.</summary>
public sealed class TracingAndLogsTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task A_run_continues_the_submitters_trace_and_its_json_log_lines_carry_the_job_id()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = Fixture.StartWorker("trace-worker", [queue], environment: new()
        {
            ["Telemetry__ConsoleTraces"] = "true",
            ["Logging__Console__FormatterName"] = "json",
            ["Logging__Console__FormatterOptions__IncludeScopes"] = "true",
            ["Logging__LogLevel__Jobs.Core.SingleJobs"] = "Debug",
        });
        // The client's own trace: the API's request span joins it, and the worker's run span must too.
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(new { function = "math.square", args = new[] { 3 }, queue }) };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var response = await Http.SendAsync(request);
        var id = (await response.JsonAsync())["id"]!.GetValue<Guid>();
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(id))["state"]!.GetValue<string>());

        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Any(line => line.Contains(traceId, StringComparison.Ordinal))),
            "the worker's span for the run carries the submitter's trace id", 15);
        Assert.Contains(Fixture.Output, line => line.Contains("run math.square", StringComparison.Ordinal));
        var logLine = Fixture.Output.FirstOrDefault(line => line.Contains("Running math.square", StringComparison.Ordinal));
        Assert.NotNull(logLine);
        Assert.Contains("\"JobId\"", logLine);
        Assert.Contains(id.ToString(), logLine);
    }
}
