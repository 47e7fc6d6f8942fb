using System.Diagnostics;
using Jobs.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Jobs.Core.Telemetry;

/// <summary>
/// Traces: the API's request span (ASP.NET Core) is the parent of each job's run span in the worker ("run
/// math.square"), through the W3C traceparent stored with the job (jobs.job.trace_parent). Exported over OTLP when
/// OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OpenTelemetry variables apply), to the console when
/// Telemetry:ConsoleTraces is true; otherwise recorded by nobody.
/// </summary>
public static class TelemetrySetup
{
    public const string SourceName = "Jobs";
    public static readonly ActivitySource Source = new(SourceName);

    public static IServiceCollection AddJobsTracing(this IServiceCollection services, IConfiguration configuration, string serviceName,
        Action<TracerProviderBuilder>? instrument = null)
    {
        var otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var console = configuration.Read<TelemetryOptions>(TelemetryOptions.Section).ConsoleTraces;
        // A worker with no exporter records no spans at all: StartActivity then costs the job's hot path nothing.
        // (The API always records its request spans, whose ids travel with the jobs it accepts.)
        if (!otlp && !console && instrument is null) return services;
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(SourceName);
                instrument?.Invoke(tracing);
                if (otlp) tracing.AddOtlpExporter();
                if (console) tracing.AddConsoleExporter();
            });
        return services;
    }
}
