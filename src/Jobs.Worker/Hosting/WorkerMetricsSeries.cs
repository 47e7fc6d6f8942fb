using System.Diagnostics.Metrics;
using Jobs.Core.Configuration;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Options;

namespace Jobs.Worker.Hosting;

/// <summary>
/// Creates this worker's series that must exist before anything happens: jobs in flight at 0 for every queue it
/// serves, and its slots (Worker:WorkerCount) as a gauge, so a scrape of an idle worker shows 0 busy of N.
/// </summary>
internal sealed class WorkerMetricsSeries(JobsMetrics metrics, IOptions<WorkerOptions> worker) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = worker.Value;
        metrics.Serving(options.EffectiveQueues);
        metrics.Meter.CreateObservableGauge("jobs.worker.slots", () => new Measurement<long>(options.EffectiveWorkerCount,
            new KeyValuePair<string, object?>("worker", JobsMetrics.WorkerName)), "{slot}", "Parallel job slots of this worker (Worker:WorkerCount)");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
