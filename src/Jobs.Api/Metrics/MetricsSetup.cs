using System.Diagnostics.Metrics;
using Jobs.Api.Queues;
using Jobs.Api.Security;
using Jobs.Core.Telemetry;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Jobs.Api.Metrics;

/// <summary>
/// GET /metrics: OpenTelemetry metrics in Prometheus's text format — the "Jobs" meter (jobs submitted here; the
/// workers' started/finished/duration/pickup metrics are on each worker's Worker:MetricsPort), ASP.NET Core's
/// request metrics, .NET runtime and process metrics, and the queues' figures (<see cref="QueueMetrics"/>). With
/// API keys configured, a read key is needed, as for the rest of the API.
/// </summary>
internal static class MetricsSetup
{
    public const string Path = "/metrics";

    /// <summary>Metrics, and traces whose request spans are the parents of the workers' job spans (<see cref="TelemetrySetup"/>).</summary>
    public static IServiceCollection AddJobsTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddJobsTracing(configuration, "jobs-api", tracing => tracing.AddAspNetCoreInstrumentation());
        services.AddSingleton<QueueMetrics>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddJobsMeters()
            .AddMeter(QueueMetrics.MeterName)
            .AddAspNetCoreInstrumentation()
            .AddPrometheusExporter());
        return services;
    }

    public static WebApplication MapJobsMetrics(this WebApplication app)
    {
        _ = app.Services.GetRequiredService<QueueMetrics>(); // creates the gauge
        app.MapPrometheusScrapingEndpoint(Path).RequireAuthorization(SecuritySetup.ReadPolicy);
        return app;
    }

    /// <summary>
    /// Per queue, read from jobs.job and jobs.map_chunk at most every 5 s: jobs.queue.depth (jobs and map chunks
    /// enqueued, not yet started), jobs.queue.oldest_age (how long the oldest of them has waited since it was due),
    /// jobs.queue.processing, jobs.queue.scheduled (delayed, not yet due), jobs.queue.retry_pending (failed runs
    /// waiting for their retry) and jobs.queue.workers (live workers serving it); and jobs.workers.live. Every queue
    /// known by name has each series, at 0 when it has nothing, and so has every queue with unfinished jobs.
    /// </summary>
    private sealed class QueueMetrics : IDisposable
    {
        public const string MeterName = "Jobs.Queues";
        private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);
        private readonly Meter _meter = new(MeterName);
        private readonly NpgsqlDataSource _db;
        private readonly KnownQueues _known;
        private readonly Lock _lock = new();
        private (DateTime At, Dictionary<string, QueueFigures> Queues) _cached = (DateTime.MinValue, []);

        public QueueMetrics(NpgsqlDataSource db, KnownQueues known)
        {
            _db = db;
            _known = known;
            Gauge("jobs.queue.depth", "{job}", "Jobs and map chunks waiting in each queue (enqueued, not yet started)", q => q.Depth);
            _meter.CreateObservableGauge("jobs.queue.oldest_age", () => PerQueue(q => q.OldestAgeSeconds), "s",
                "How long the oldest job waiting in each queue has waited since it was due (0 when none waits)");
            Gauge("jobs.queue.processing", "{job}", "Jobs and map chunks of each queue running now, on all workers", q => q.Processing);
            Gauge("jobs.queue.scheduled", "{job}", "Jobs of each queue delayed (delaySeconds, runAt) and not yet due", q => q.Scheduled);
            Gauge("jobs.queue.retry_pending", "{job}", "Jobs of each queue whose run failed and that wait for their retry", q => q.RetryPending);
            _meter.CreateObservableGauge("jobs.queue.workers", () =>
                {
                    var serving = _known.WorkersPerQueue();
                    return Names().Select(q => new Measurement<long>(serving.GetValueOrDefault(q), new KeyValuePair<string, object?>("queue", q)));
                },
                "{worker}", "Live worker processes serving each queue");
            _meter.CreateObservableGauge("jobs.workers.live", () => (long)_known.LiveWorkers().Count, "{worker}",
                "Live worker processes (Hangfire servers with a heartbeat within 90 s)");
        }

        private void Gauge(string name, string unit, string description, Func<QueueFigures, long> value) =>
            _meter.CreateObservableGauge(name, () => PerQueue(value), unit, description);

        private IEnumerable<string> Names() => _known.Named().Concat(Read().Keys).Distinct(StringComparer.Ordinal);

        private IEnumerable<Measurement<T>> PerQueue<T>(Func<QueueFigures, T> value) where T : struct
        {
            var figures = Read();
            return [.. Names().Select(q => new Measurement<T>(value(figures.GetValueOrDefault(q)), new KeyValuePair<string, object?>("queue", q)))];
        }

        private Dictionary<string, QueueFigures> Read()
        {
            lock (_lock)
            {
                if (DateTime.UtcNow - _cached.At > MaxAge)
                {
                    try
                    {
                        using var cmd = QueueFigures.Command(_db, queue: null);
                        using var reader = cmd.ExecuteReader();
                        var queues = new Dictionary<string, QueueFigures>(StringComparer.Ordinal);
                        while (reader.Read())
                        {
                            var (queue, figures) = QueueFigures.Read(reader);
                            queues[queue] = figures;
                        }
                        _cached = (DateTime.UtcNow, queues);
                    }
                    catch (Exception e) when (e is NpgsqlException or TimeoutException)
                    {
                        // PostgreSQL away: report nothing rather than stale figures.
                        _cached = (DateTime.UtcNow, []);
                    }
                }
                return _cached.Queues;
            }
        }

        public void Dispose() => _meter.Dispose();
    }
}
