using System.Diagnostics.Metrics;

namespace Jobs.Core.Telemetry;

/// <summary>
/// The job metrics every process records on the meter "Jobs" (OpenTelemetry; exported in Prometheus format on
/// the API's /metrics and, when Worker:MetricsPort is set, on each worker's): jobs submitted (API, schedules),
/// started, succeeded, failed, canceled and retried (workers), run duration and pickup latency, all tagged with
/// function and queue; jobs in flight per queue and worker; invariant violations. Map items count as jobs.
/// </summary>
public sealed class JobsMetrics : IDisposable
{
    public const string MeterName = "Jobs";

    /// <summary>
    /// Every duration histogram's bucket boundaries, in seconds: from 1 ms to 1 h, so quick and long jobs each land in
    /// buckets of their own (OpenTelemetry's default, 0, 5, 10, 25 … 10000, is made for milliseconds: in seconds
    /// every job under 5 s fell into one bucket).
    /// </summary>
    public static readonly IReadOnlyList<double> SecondsBuckets =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1200, 1800, 3600];

    /// <summary>This process as the "worker" label names it: its Hangfire server name (WorkerSetup).</summary>
    public static string WorkerName { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _submitted;
    private readonly Counter<long> _started;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _pickup;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Counter<long> _violations;

    public JobsMetrics()
    {
        _submitted = _meter.CreateCounter<long>("jobs.submitted", "{job}", "Jobs (and map items) accepted (stored durably)");
        _started = _meter.CreateCounter<long>("jobs.started", "{job}", "Job runs (and map items) started by workers");
        _finished = _meter.CreateCounter<long>("jobs.finished", "{job}", "Job runs (and map items) ended, by outcome (succeeded, failed, canceled, retried, released)");
        _duration = SecondsHistogram("jobs.duration", "How long a job's function ran");
        _pickup = SecondsHistogram("jobs.pickup_latency",
            "From submission (or due time) to the start of the first run; for a map item, from the map's submission to the item's start");
        _inFlight = _meter.CreateUpDownCounter<long>("jobs.in_flight", "{job}",
            "Job slots busy in this worker, per queue: single jobs and map chunks running now");
        _violations = _meter.CreateCounter<long>("jobs.invariant_violations", "{job}",
            "Unfinished jobs found in none of the situations that lead to an end, for longer than Worker:InvariantBound (should stay 0)");
    }

    public Meter Meter => _meter;

    /// <summary>A histogram of seconds with <see cref="SecondsBuckets"/>.</summary>
    public Histogram<double> SecondsHistogram(string name, string description) =>
        _meter.CreateHistogram(name, "s", description, tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <param name="count">Jobs accepted; a map's items each count as one.</param>
    public void Submitted(string function, string queue, int count = 1) => _submitted.Add(count, Tags(function, queue));

    public void Started(string function, string queue, TimeSpan? pickup)
    {
        _started.Add(1, Tags(function, queue));
        if (pickup is { } p) _pickup.Record(Math.Max(0, p.TotalSeconds), Tags(function, queue));
    }

    /// <param name="outcome">succeeded, failed, canceled or retried.</param>
    public void Finished(string function, string queue, string outcome, TimeSpan duration)
    {
        _finished.Add(1, [new("function", function), new("queue", queue), new("outcome", outcome)]);
        _duration.Record(duration.TotalSeconds, [new("function", function), new("queue", queue), new("outcome", outcome)]);
    }

    /// <summary>Creates the in-flight series of these queues at 0, so an idle worker shows 0 rather than nothing.</summary>
    public void Serving(IEnumerable<string> queues)
    {
        foreach (var queue in queues) _inFlight.Add(0, InFlightTags(queue));
    }

    /// <summary>A slot busy with a job or map chunk of <paramref name="queue"/> until disposed.</summary>
    public Busy InFlight(string queue)
    {
        _inFlight.Add(1, InFlightTags(queue));
        return new Busy(this, queue);
    }

    public readonly struct Busy(JobsMetrics metrics, string queue) : IDisposable
    {
        public void Dispose() => metrics._inFlight.Add(-1, InFlightTags(queue));
    }

    /// <summary>Creates the violations series at 0 (a check ran), so an alert on it has a series while all is well.</summary>
    public void InvariantsChecked() => _violations.Add(0);

    public void InvariantViolated(string kind, string problem) => _violations.Add(1, [new("kind", kind), new("problem", problem)]);

    private static KeyValuePair<string, object?>[] Tags(string function, string queue) => [new("function", function), new("queue", queue)];

    private static KeyValuePair<string, object?>[] InFlightTags(string queue) => [new("queue", queue), new("worker", WorkerName)];

    public void Dispose() => _meter.Dispose();
}
