using OpenTelemetry.Metrics;

namespace Jobs.Core.Telemetry;

/// <summary>What every process's metrics endpoint exports, beside its own meters.</summary>
public static class MetricsMeters
{
    /// <summary>The "Jobs" meter, .NET runtime metrics (GC, heap, thread pool, exceptions) and process metrics (CPU, memory, threads).</summary>
    public static MeterProviderBuilder AddJobsMeters(this MeterProviderBuilder metrics) => metrics
        .AddMeter(JobsMetrics.MeterName)
        .AddRuntimeInstrumentation()
        .AddProcessInstrumentation();
}
