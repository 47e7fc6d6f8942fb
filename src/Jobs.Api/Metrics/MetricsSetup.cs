using System.Diagnostics.Metrics;
using Jobs.Api.Security;
using Jobs.Core.Telemetry;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Jobs.Api.Metrics;

/// <summary>
/// GET /metrics: OpenTelemetry metrics in Prometheus's text format — the "Jobs" meter (jobs submitted here; the
/// workers' started/finished/duration/pickup metrics are on each worker's Worker:MetricsPort), ASP.NET Core's
/// request metrics, and the queue depth (jobs waiting per queue, read from jobs.job at most every 5 s). With
/// API keys configured, a read key is needed, as for the rest of the API.
/// </summary>
internal static class MetricsSetup
{
    public const string Path = "/metrics";

    /// <summary>Metrics, and traces whose request spans are the parents of the workers' job spans (<see cref="TelemetrySetup"/>).</summary>
    public static IServiceCollection AddJobsTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddJobsTracing(configuration, "jobs-api", tracing => tracing.AddAspNetCoreInstrumentation());
        services.AddSingleton<QueueDepth>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(JobsMetrics.MeterName, QueueDepth.MeterName)
            .AddAspNetCoreInstrumentation()
            .AddPrometheusExporter());
        return services;
    }

    public static WebApplication MapJobsMetrics(this WebApplication app)
    {
        _ = app.Services.GetRequiredService<QueueDepth>(); // creates the gauge
        app.MapPrometheusScrapingEndpoint(Path).RequireAuthorization(SecuritySetup.ReadPolicy);
        return app;
    }

    /// <summary>jobs.queue.depth{queue}: jobs enqueued and not yet started, per queue.</summary>
    private sealed class QueueDepth : IDisposable
    {
        public const string MeterName = "Jobs.Queues";
        private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);
        private readonly Meter _meter = new(MeterName);
        private readonly NpgsqlDataSource _db;
        private readonly Lock _lock = new();
        private (DateTime At, KeyValuePair<string, long>[] Depths) _cached = (DateTime.MinValue, []);

        public QueueDepth(NpgsqlDataSource db)
        {
            _db = db;
            _meter.CreateObservableGauge("jobs.queue.depth", Measure, "{job}", "Jobs waiting in each queue (enqueued, not yet started)");
        }

        private IEnumerable<Measurement<long>> Measure()
        {
            lock (_lock)
            {
                if (DateTime.UtcNow - _cached.At > MaxAge)
                {
                    try
                    {
                        using var cmd = _db.CreateCommand("SELECT queue, count(*) FROM jobs.job WHERE state = 'enqueued' GROUP BY queue");
                        using var reader = cmd.ExecuteReader();
                        var depths = new List<KeyValuePair<string, long>>();
                        while (reader.Read()) depths.Add(new(reader.GetString(0), reader.GetInt64(1)));
                        _cached = (DateTime.UtcNow, [.. depths]);
                    }
                    catch (Exception e) when (e is NpgsqlException or TimeoutException)
                    {
                        // PostgreSQL away: report nothing rather than stale figures.
                        _cached = (DateTime.UtcNow, []);
                    }
                }
                return _cached.Depths.Select(d => new Measurement<long>(d.Value, new KeyValuePair<string, object?>("queue", d.Key)));
            }
        }

        public void Dispose() => _meter.Dispose();
    }
}
