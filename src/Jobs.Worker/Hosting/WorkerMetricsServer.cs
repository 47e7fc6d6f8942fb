using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Jobs.Worker.Hosting;

/// <summary>
/// This worker's <c>/metrics</c> (Worker:MetricsPort on Worker:MetricsHost): a small Kestrel server of its own, serving
/// the worker's meter provider in Prometheus's text format, as the API serves its own. It replaced OpenTelemetry's
/// <c>HttpListener</c> exporter, whose start crashed the worker when a scrape arrived at that instant (.NET's managed
/// <c>HttpListener</c> accepts before its endpoint is ready, dotnet/runtime#28722 / corefx#35191): 5 of 12 starts
/// scraped from their first moment exited with "PrometheusExporter HttpListener could not be started".
/// </summary>
internal sealed class WorkerMetricsServer(MeterProvider meters, IOptions<WorkerOptions> worker, ILogger<WorkerMetricsServer> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = worker.Value;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(WorkerMetricsServer).Assembly.GetName().Name });
        // Nothing of the worker's configuration or environment (appsettings.json, ASPNETCORE_*, a container's HTTP_PORTS)
        // reaches this server: it listens where Worker:MetricsHost and MetricsPort say, and logs nothing of its own.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(); // what UseUrls below writes to
        builder.Logging.ClearProviders();
        // "*" or "+": every address of the machine (in a container); else the one named (default 127.0.0.1).
        var host = options.MetricsHost is "*" or "+" ? "0.0.0.0" : options.MetricsHost.Contains(':') ? $"[{options.MetricsHost}]" : options.MetricsHost;
        builder.WebHost.UseUrls($"http://{host}:{options.MetricsPort}");
        _app = builder.Build();
        _app.MapPrometheusScrapingEndpoint("/metrics", meters, configureBranchedPipeline: null, optionsName: null);
        await _app.StartAsync(cancellationToken);
        logger.LogInformation("Metrics at http://{Host}:{Port}/metrics", host, options.MetricsPort);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null) await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }
}
