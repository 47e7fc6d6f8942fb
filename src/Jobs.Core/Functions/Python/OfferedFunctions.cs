using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// Functions that live workers offer (jobs.function_offer), for the API, which runs no Python itself: a function is
/// known while at least one worker advertised it within <see cref="Freshness"/>. Read in the background every
/// second; requests read the last snapshot, and one that misses a name asks for a fresh read (<see cref="RefreshNowAsync"/>),
/// shared and bounded to a second, so a slow or absent PostgreSQL never holds a request up for long (the read used
/// to run on every request, synchronously, under a lock).
/// </summary>
public sealed class OfferedFunctions(NpgsqlDataSource dataSource, ILogger<OfferedFunctions> logger) : BackgroundService, IOfferedFunctions
{
    public static readonly TimeSpan Freshness = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FirstReadLimit = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MissReadLimit = TimeSpan.FromSeconds(1);

    private volatile IReadOnlyDictionary<string, JobFunction> _current = new Dictionary<string, JobFunction>();
    private bool _failing;
    private long _lastGoodRead = long.MinValue / 2; // Environment.TickCount64 of the last read that succeeded

    /// <summary>
    /// How old the offers as last read may be for a name missing from them to be called unknown when the read a miss
    /// asks for does not finish in time (PostgreSQL slow): older — the API cut off, or just started and never able to
    /// read — and whether the function exists cannot be told.
    /// </summary>
    public static readonly TimeSpan MissAnswerableFor = TimeSpan.FromSeconds(5);
    private readonly Lock _reading = new();
    private TaskCompletionSource? _queued;
    private Task? _inFlight;

    /// <summary>The offers as last read. A failed read keeps them: a PostgreSQL restart must not withdraw every Python function.</summary>
    public IReadOnlyDictionary<string, JobFunction> Current => _current;

    /// <summary>The first read before the API serves, so a function offered already is known from the first request.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Bounded by the clock, not only by cancellation: a connection stuck in PostgreSQL's start-up exchange does not
        // notice a token, and the API must not wait for Npgsql's connection timeout before it serves. A first read
        // still running goes on in the background and lands when it lands.
        await Task.WhenAny(RefreshAsync(cancellationToken), Task.Delay(FirstReadLimit, cancellationToken));
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await RefreshAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// A read that starts after this call, given <see cref="MissReadLimit"/> at most: a request that misses a function
    /// waits this long for PostgreSQL, no more (then answers from the offers as last read). At most one read runs and one waits to start; every caller arriving
    /// meanwhile shares the waiting one, so unknown names cost one query at a time, not one each.
    /// </summary>
    public async Task<bool> RefreshNowAsync(CancellationToken ct)
    {
        Task read;
        lock (_reading)
        {
            if (_queued is { } queued)
            {
                read = queued.Task;
            }
            else
            {
                // The read in flight may have begun before the offer this caller looks for was written: the next one.
                var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var previous = _inFlight ?? Task.CompletedTask;
                (_queued, _inFlight, read) = (next, next.Task, next.Task);
                _ = ReadAfterAsync(previous, next);
            }
        }
        try
        {
            await read.WaitAsync(MissReadLimit, ct);
        }
        catch (TimeoutException)
        {
            // PostgreSQL slow or away: the request goes on with the offers as last read, if they are recent.
        }
        return Environment.TickCount64 - Interlocked.Read(ref _lastGoodRead) <= (long)MissAnswerableFor.TotalMilliseconds;
    }

    private async Task ReadAfterAsync(Task previous, TaskCompletionSource next)
    {
        await previous;
        lock (_reading) _queued = null; // callers from now on need a read that starts after this one
        await RefreshAsync(CancellationToken.None); // never throws
        next.SetResult();
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        try
        {
            var functions = new Dictionary<string, JobFunction>(StringComparer.Ordinal);
            await using var cmd = dataSource.CreateCommand("""
                SELECT DISTINCT ON (name) definition::text FROM jobs.function_offer
                WHERE seen_at > now() - $1 ORDER BY name, seen_at DESC
                """);
            cmd.Parameters.Add(new() { Value = Freshness });
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var definition = reader.GetString(0);
                try
                {
                    var offer = JsonNode.Parse(definition)!.AsObject();
                    var function = new PythonFunction(offer["module"]!.GetValue<string>(), offer["function"]!.AsObject(), pool: null,
                        offer["pool"] as JsonObject is { } settings ? (JsonObject)settings.DeepClone() : null);
                    functions[function.Name] = function;
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or KeyNotFoundException)
                {
                    // One offer this version cannot read (a newer worker's, say) must not freeze all the others.
                    logger.LogWarning("Skipping an offered function this API cannot read ({Error}): {Definition}", e.Message,
                        definition.Length > 200 ? definition[..200] + "…" : definition);
                }
            }
            _current = functions;
            Interlocked.Exchange(ref _lastGoodRead, Environment.TickCount64);
            if (_failing) logger.LogInformation("Reading the functions workers offer again ({Count})", functions.Count);
            _failing = false;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (Exception e)
        {
            // Whatever went wrong (PostgreSQL away or slow past the first read's limit, an offer this version cannot
            // read), the API goes on with the last offers; a background service that threw would stop the host.
            // Once per outage, not every second.
            if (!_failing) logger.LogWarning(e, "Could not read the functions workers offer; keeping the last known");
            _failing = true;
        }
    }
}
