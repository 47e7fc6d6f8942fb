using Hangfire;
using Jobs.Core.Configuration;
using Jobs.Core.Hangfire;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Queues;

/// <summary>
/// The queues this service takes work for: "default", those declared in Jobs:Queues, this process's Worker:Queues,
/// and those a live worker serves (Hangfire's server list, read in the background every second, so a request never
/// waits on it; a worker's queues are known within a second of its start). Anything else is refused where it is
/// written (POST /jobs, /jobs/batch, /maps, /schedules): a job for a queue nothing serves would wait for ever, and
/// every name a client makes up would be a series in /metrics, a row in /pool and on the dashboard's queues page.
/// </summary>
internal sealed class KnownQueues(JobStorage storage, IOptionsMonitor<JobsOptions> jobs, IOptions<WorkerOptions> worker, ILogger<KnownQueues> logger)
    : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    /// <summary>How many names a refusal lists.</summary>
    private const int Listed = 20;
    private static readonly TimeSpan LiveHeartbeat = TimeSpan.FromSeconds(60);

    private volatile IReadOnlySet<string> _served = new HashSet<string>(StringComparer.Ordinal);
    private volatile IReadOnlyDictionary<string, int> _servers = new Dictionary<string, int>(StringComparer.Ordinal);
    private bool _failing;

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
    public IReadOnlyDictionary<string, int> WorkersPerQueue => _servers;

    /// <summary>Live worker processes (Hangfire servers), as last read.</summary>
    public int LiveWorkers { get; private set; }

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
            _served = servers.SelectMany(s => s.Queues).ToHashSet(StringComparer.Ordinal);
            // Live: a heartbeat within two of Hangfire's heartbeat intervals (30 s); a killed worker drops out after a minute.
            var live = servers.Where(s => s.Heartbeat is not { } beat || DateTime.UtcNow - beat < LiveHeartbeat).ToList();
            _servers = live.SelectMany(s => s.Queues.Distinct(StringComparer.Ordinal)).GroupBy(q => q, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            LiveWorkers = live.Count;
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
