using System.ComponentModel.DataAnnotations;

namespace Jobs.Core.Configuration;

/// <summary>A worker process's Hangfire server (section "Worker").</summary>
public sealed class WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>Parallel job slots in this process; 0 means one per core, like <c>Pool()</c>.</summary>
    [Range(0, 1024)]
    public int WorkerCount { get; set; }

    /// <summary>
    /// Queues this process serves, in priority order, as configured; <see cref="EffectiveQueues"/> is what it serves.
    /// Not initialised to ["default"]: the configuration binder appends to an array it finds, so a worker configured
    /// for "critical" alone served ["default", "critical"], default first (and appsettings.json's "default" twice).
    /// </summary>
    public string[] Queues { get; set; } = [];

    /// <summary><see cref="Queues"/> without repeats, or ["default"] when none is configured.</summary>
    public string[] EffectiveQueues => Queues.Length == 0 ? ["default"] : [.. Queues.Distinct(StringComparer.Ordinal)];

    /// <summary>On SIGTERM, how long running jobs get to finish before they are abandoned to another worker.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a fetched job stays invisible to other workers without a heartbeat from its worker. The
    /// timeout slides while the job runs, so this bounds how fast a killed worker's job is picked up again.
    /// </summary>
    // Each worker process's Heartbeat thread renews every job it holds every InvisibilityTimeout / 5: 8 s leaves room
    // for a busy machine (a late renewal makes a second worker run the job too) and still re-runs a dead worker's job
    // within 10 s.
    [Range(typeof(TimeSpan), "00:00:02", "01:00:00")]
    public TimeSpan InvisibilityTimeout { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>
    /// An unfinished job that is in none of the situations that lead to an end (see <c>Jobs.Core.Queue.Maintenance.Invariants</c>)
    /// for this long is reported as a violation, with its rows, by every worker's invariant check.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan InvariantBound { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a worker checks whether its running jobs were canceled (DELETE /jobs/{id}).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan CancellationCheckInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often delayed jobs and retries that are due are moved to their queue (Hangfire's default: 15 s).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan SchedulePollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A batch of jobs (submissions that arrived together) still running after this long hands half of what is
    /// left to another Hangfire job, so idle slots share it; quick jobs finish whole batches well within it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan BatchSplitAfter { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// The port this worker serves its metrics on, in Prometheus's format at <c>/metrics</c>: jobs started and
    /// finished by outcome, run duration and pickup latency per function and queue, jobs in flight, slots, runtime and
    /// process metrics. 0: not served. Under the launcher, worker N serves on this port + N - 1 (one listener a process).
    /// </summary>
    [Range(0, 65535)]
    public int MetricsPort { get; set; }

    /// <summary>The address the metrics listener binds: a host name or address, or <c>*</c> (or <c>+</c>) for every interface, as in a container.</summary>
    public string MetricsHost { get; set; } = "127.0.0.1";

    public int EffectiveWorkerCount => WorkerCount > 0 ? WorkerCount : Environment.ProcessorCount;
}
