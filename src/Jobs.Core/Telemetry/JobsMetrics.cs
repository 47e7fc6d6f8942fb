using System.Diagnostics.Metrics;

namespace Jobs.Core.Telemetry;

/// <summary>
/// The job metrics every process records on the meter "Jobs" (OpenTelemetry; exported in Prometheus format on
/// the API's /metrics and, when Worker:MetricsUrl is set, on each worker's): jobs submitted (API, schedules),
/// started, succeeded, failed, canceled and retried (workers), run duration and pickup latency, all tagged with
/// function and queue.
/// </summary>
public sealed class JobsMetrics : IDisposable
{
    public const string MeterName = "Jobs";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _submitted;
    private readonly Counter<long> _started;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _pickup;
    private readonly Counter<long> _violations;

    public JobsMetrics()
    {
        _submitted = _meter.CreateCounter<long>("jobs.submitted", "{job}", "Jobs accepted (stored durably)");
        _started = _meter.CreateCounter<long>("jobs.started", "{job}", "Job runs started by workers");
        _finished = _meter.CreateCounter<long>("jobs.finished", "{job}", "Job runs ended, by outcome (succeeded, failed, canceled, retried)");
        _duration = _meter.CreateHistogram<double>("jobs.duration", "s", "How long a job's function ran");
        _pickup = _meter.CreateHistogram<double>("jobs.pickup_latency", "s", "From submission (or due time) to the start of the first run");
        _violations = _meter.CreateCounter<long>("jobs.invariant_violations", "{job}",
            "Unfinished jobs found in none of the situations that lead to an end, for longer than Worker:InvariantBound (should stay 0)");
    }

    public Meter Meter => _meter;

    public void Submitted(string function, string queue) => _submitted.Add(1, Tags(function, queue));

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

    public void InvariantViolated(string kind, string problem) => _violations.Add(1, [new("kind", kind), new("problem", problem)]);

    private static KeyValuePair<string, object?>[] Tags(string function, string queue) => [new("function", function), new("queue", queue)];

    public void Dispose() => _meter.Dispose();
}
