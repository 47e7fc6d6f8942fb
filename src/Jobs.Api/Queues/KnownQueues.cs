using Jobs.Core.Database;
using Hangfire;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Queues;

/// <summary>
/// The queues this service takes work for: "default", those declared in Jobs:Queues, this process's Worker:Queues,
/// and those a live worker serves (Hangfire's server list, read in the background every second, so a request never
/// waits on it; a worker's queues are known within a second of its start). Anything else is refused where it is
/// written (POST /jobs, /jobs/batch, /maps, /schedules): a job for a queue nothing serves would wait for ever, and
/// every name a client makes up would be a series in /metrics, a row in /pool and on the dashboard's queues page.
/// </summary>
internal sealed class KnownQueues(JobStorage storage, IOptionsMonitor<JobsOptions> jobs, IOptions<WorkerOptions> worker, DatabaseClock clock, ILogger<KnownQueues> logger)
    : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    /// <summary>How many names a refusal lists.</summary>
    private const int Listed = 20;

    /// <summary>A worker process whose heartbeat is older than this is not counted as serving (Hangfire beats every 30 s).</summary>
    public static readonly TimeSpan LiveHeartbeat = TimeSpan.FromSeconds(90);

    private volatile IReadOnlySet<string> _served = new HashSet<string>(StringComparer.Ordinal);
    private volatile IReadOnlyList<ServingWorker> _workers = [];
    private bool _failing;

    /// <summary>A live worker process (Hangfire server): its name, its slots (Worker:WorkerCount), the queues it serves.</summary>
    public sealed record ServingWorker(string Name, int Slots, IReadOnlyList<string> Queues, DateTime? Heartbeat);

    /// <summary>The live worker processes serving <paramref name="queue"/> (heartbeat within <see cref="LiveHeartbeat"/>), as last read.</summary>
    public IReadOnlyList<ServingWorker> Serving(string queue) =>
        [.. _workers.Where(w => w.Queues.Contains(queue, StringComparer.Ordinal) && IsLive(w))];

    /// <summary>Every live worker process, as last read.</summary>
    public IReadOnlyList<ServingWorker> LiveWorkers() => [.. _workers.Where(IsLive)];

    /// <summary>Whether "default" or Jobs:Queues (a name or a prefix with '*') declares <paramref name="queue"/>.</summary>
    public bool IsDeclared(string queue) => queue == QueueNames.Default || jobs.CurrentValue.Queues.Any(d => QueueNames.Declares(d, queue));

    /// <summary>Queues declared in Jobs:Queues by their exact name (not a prefix with '*'), and "default".</summary>
    public IEnumerable<string> DeclaredNames() =>
        new[] { QueueNames.Default }.Concat(jobs.CurrentValue.Queues.Where(QueueNames.IsValid)).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// Why a job for <paramref name="queue"/> (a known queue) will wait, or null: no live worker serves it. It is accepted
    /// all the same (a worker may be starting), and the warning says so.
    /// </summary>
    public string? Unserved(string queue) =>
        Serving(queue).Count > 0 ? null
        : $"No live worker serves queue '{queue}': its jobs are accepted but wait until a worker with Worker:Queues naming it starts.";

    /// <summary>
    /// Work accepted for a queue no live worker serves (a worker may be starting) says so on its response: a Warning
    /// header (RFC 9111's "199 Miscellaneous warning" form), <c>Warning: 199 jobs "No live worker serves queue 'x': …"</c>.
    /// </summary>
    /// <remarks>Work for several queues (POST /jobs/batch) gets one warning per unserved queue.</remarks>
    public void WarnIfUnserved(string queue, HttpContext http) => WarnIfUnserved([queue], http);

    public void WarnIfUnserved(IEnumerable<string> queues, HttpContext http)
    {
        foreach (var queue in queues.Distinct(StringComparer.Ordinal))
            if (Unserved(queue) is { } warning) http.Response.Headers.Append("Warning", $"199 jobs \"{warning}\"");
    }

    private bool IsLive(ServingWorker w) => w.Heartbeat is { } beat && clock.UtcNow - beat <= LiveHeartbeat;

    public bool IsKnown(string queue) =>
        queue == QueueNames.Default
        || _served.Contains(queue)
        || worker.Value.EffectiveQueues.Contains(queue, StringComparer.Ordinal)
        || jobs.CurrentValue.Queues.Any(d => QueueNames.Declares(d, queue));

    /// <summary>The known queues as a refusal names them: declared first, then served, at most <see cref="Listed"/>.</summary>
    public IReadOnlyList<string> Names() =>
        [.. new[] { QueueNames.Default }.Concat(jobs.CurrentValue.Queues).Concat(worker.Value.EffectiveQueues)
            .Concat(_served.Order(StringComparer.Ordinal)).Distinct(StringComparer.Ordinal).Take(Listed)];

    /// <summary>Every queue known by name (not the patterns of Jobs:Queues), for /metrics' per-queue series.</summary>
    public IEnumerable<string> Named() =>
        new[] { QueueNames.Default }.Concat(jobs.CurrentValue.Queues.Where(d => d[^1] != '*')).Concat(worker.Value.EffectiveQueues)
            .Concat(_served).Distinct(StringComparer.Ordinal);

    /// <summary>Live workers (Hangfire servers) serving each queue, as last read.</summary>
    public IReadOnlyDictionary<string, int> WorkersPerQueue() =>
        LiveWorkers().SelectMany(w => w.Queues.Distinct(StringComparer.Ordinal)).GroupBy(q => q, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // The first read before the API serves, bounded: a worker already running is known from the first request.
        await Task.WhenAny(Task.Run(Refresh, cancellationToken), Task.Delay(TimeSpan.FromSeconds(5), cancellationToken));
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) Refresh();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void Refresh()
    {
        try
        {
            // Hangfire lists a server until its watchdog removes it (no heartbeat for its server timeout): a worker
            // restarting keeps its queues known.
            var servers = storage.GetMonitoringApi().Servers();
            _workers = [.. servers.Select(s => new ServingWorker(s.Name, s.WorkersCount, [.. s.Queues],
                s.Heartbeat is { } h ? DateTime.SpecifyKind(h, DateTimeKind.Utc) : null)).OrderBy(w => w.Name, StringComparer.Ordinal)];
            _served = servers.SelectMany(s => s.Queues).ToHashSet(StringComparer.Ordinal);
            if (_failing) logger.LogInformation("Reading the queues live workers serve again");
            _failing = false;
        }
        catch (Exception e)
        {
            // PostgreSQL away: the last list stands (a restart must not refuse every queue a worker serves).
            if (!_failing) logger.LogWarning(e, "Could not read the queues live workers serve; keeping the last known");
            _failing = true;
        }
    }
}
