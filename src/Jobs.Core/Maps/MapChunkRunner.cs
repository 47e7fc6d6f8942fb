using System.Diagnostics;
using System.Text.Json;
using Hangfire;
using Hangfire.Server;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Jobs;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Maps;

/// <summary>
/// Runs one chunk of a map: the function once per item, in index order, with outcomes written in batches
/// (every <see cref="FlushItems"/> items or <see cref="FlushInterval"/>). A failing item records its error and
/// the chunk goes on, as Pool.map's workers do. A chunk re-run after a crash skips the items already done.
/// Each item has what a single job has: the map's timeoutSeconds (or the function's default), cancellation with the
/// map (DELETE /maps/{id} deletes the chunk's Hangfire job, which cancels <c>ct</c>), the jobs.started/finished/duration
/// metrics; the chunk is one span. Progress an item reports is not kept: a map's progress is its counts. A chunk that
/// ends gives its turn to the map's next chunk (<see cref="MapWindow"/>).
/// </summary>
public sealed class MapChunkRunner(MapExecutionStore maps, MapWindow window, FunctionInvoker invoker, JobsMetrics metrics, IOptions<JobsOptions> options, ILogger<MapChunkRunner> logger,
    ILoggerFactory loggers)
{
    /// <summary>One Information line per chunk's end, not per item: a map of 10⁶ items writes one line per chunk (<see cref="JobOutcomeLog.ChunkEnded"/>).</summary>
    private readonly ILogger _outcomes = loggers.CreateLogger(JobOutcomeLog.MapCategory);

    private const int FlushItems = 1000;
    private static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(200);

    [JobDisplayName("{0}")]
    public async Task RunAsync(string call, Guid mapId, int chunk, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var hangfireJobId = context.BackgroundJob.Id;
        // Retried through a PostgreSQL restart, as a job's claim is: a claim that threw failed the Hangfire job and
        // left the chunk enqueued for good (found by the chaos soak).
        var claimed = await DatabaseRetry.RunAsync(token => maps.ClaimChunkAsync(mapId, chunk, hangfireJobId, context.ServerId, token), ct);
        if (claimed is null)
        {
            logger.LogInformation("Chunk {Chunk} of map {MapId} is not claimable by Hangfire job {HangfireJobId}; skipping", chunk, mapId, hangfireJobId);
            return;
        }
        using var busy = metrics.InFlight(claimed.Queue);
        using var activity = TelemetrySetup.Source.StartActivity($"run map chunk {claimed.Function}", ActivityKind.Consumer);
        activity?.SetTag("jobs.map_id", mapId).SetTag("jobs.chunk", chunk).SetTag("jobs.function", claimed.Function)
            .SetTag("jobs.queue", claimed.Queue).SetTag("hangfire.job_id", hangfireJobId);
        var items = await DatabaseRetry.RunAsync(token => maps.PendingItemsAsync(mapId, claimed.FirstIndex, claimed.EndIndex, token), ct);
        activity?.SetTag("jobs.items", items.Count);
        var timeout = claimed.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        using var kwargs = JsonDocument.Parse(claimed.Kwargs);
        var itemContext = new JobContext(mapId, claimed.Attempts, (_, _, _) => Task.CompletedTask);

        var batch = new Batch(items.Count < FlushItems ? items.Count : FlushItems);
        var sinceFlush = Stopwatch.StartNew();
        var quarantined = claimed.Crashes >= options.Value.MaxWorkerCrashes;
        var firstRun = claimed.Attempts == 1;
        var clock = Stopwatch.StartNew();
        int succeeded = 0, failed = 0;
        Exception? firstFailure = null;
        foreach (var (index, argsJson, tuples) in items)
        {
            if (ct.IsCancellationRequested) break;
            if (quarantined)
            {
                // Which item kills the worker is not known (outcomes are written in batches): none of the rest runs.
                firstFailure ??= new WorkerCrashedException(claimed.Function, claimed.Crashes);
                batch.Add(index, MapItemStates.Failed, null, Error(firstFailure), null);
                failed++;
                continue;
            }
            // Pickup latency as a job's: from the map's submission to the item's first run (not a re-run's).
            metrics.Started(claimed.Function, claimed.Queue, firstRun ? DateTime.UtcNow - claimed.MapCreatedAt : null);
            // With a timeout, isolated as a single job is (so a function that ignores its token still loses its item on
            // time); without one, inline: maps are hot.
            // Where the item's values held Python tuples: given to the call, and its result's taken back.
            itemContext.ArgumentTuples = tuples;
            itemContext.ResultTuples = null;
            var item = await invoker.InvokeAsync(claimed.Function, argsJson, kwargs.RootElement, itemContext, timeout, isolate: false, ct);
            if (item.Interrupted)
            {
                metrics.Finished(claimed.Function, claimed.Queue, JobStates.Canceled, item.Duration);
                break;
            }
            if (item.Failure is null) succeeded++;
            else
            {
                failed++;
                firstFailure ??= item.Failure;
            }
            batch.Add(index, item.Failure is null ? MapItemStates.Succeeded : MapItemStates.Failed, item.Result, item.Failure is { } failure ? Error(failure) : null,
                item.Failure is null ? itemContext.ResultTuples : null);
            metrics.Finished(claimed.Function, claimed.Queue, item.Failure is null ? JobStates.Succeeded : JobStates.Failed, item.Duration);
            if (batch.Count >= FlushItems || sinceFlush.Elapsed >= FlushInterval)
            {
                await batch.FlushAsync(maps, mapId, CancellationToken.None);
                sinceFlush.Restart();
            }
        }
        await batch.FlushAsync(maps, mapId, CancellationToken.None);

        if (ct.IsCancellationRequested && !await DatabaseRetry.RunAsync(token => maps.IsCancelRequestedAsync(mapId, token)))
        {
            // Shutdown: hand the chunk back uncounted; Hangfire requeues it and its re-run does the rest.
            await DatabaseRetry.RunAsync(token => maps.ReleaseChunkAsync(mapId, chunk, hangfireJobId, token));
            LogEnd("released");
            ct.ThrowIfCancellationRequested();
        }
        var end = ct.IsCancellationRequested ? "canceled" : "done";
        var next = await DatabaseRetry.RunAsync(token => maps.FinishChunkAsync(mapId, chunk, hangfireJobId, end, options.Value.Retention, token));
        LogEnd(end);
        // Created now, the next chunk's Hangfire job queues behind whatever others submitted while this one ran.
        if (next.Count > 0) await window.DispatchOrLeaveToSweeperAsync(next);

        void LogEnd(string outcome) => JobOutcomeLog.ChunkEnded(_outcomes, mapId, chunk, outcome, JobOutcomeLog.Milliseconds(clock.Elapsed),
            claimed.Function, claimed.Queue, succeeded, failed, firstFailure is null ? null : ErrorJson.TypeOf(firstFailure), firstFailure is null ? null : JobOutcomeLog.OneLine(firstFailure.Message));
    }

    private static string Error(Exception e) => ErrorJson.From(e);

    private sealed class Batch(int capacity)
    {
        private readonly List<int> _indexes = new(capacity);
        private readonly List<short> _states = new(capacity);
        private readonly List<string?> _results = new(capacity);
        private readonly List<string?> _errors = new(capacity);
        private readonly List<string?> _resultTuples = new(capacity);

        public int Count => _indexes.Count;

        public void Add(int index, short state, string? result, string? error, string? resultTuples)
        {
            _indexes.Add(index);
            _states.Add(state);
            _results.Add(result);
            _errors.Add(error);
            _resultTuples.Add(resultTuples);
        }

        public async Task FlushAsync(MapExecutionStore maps, Guid mapId, CancellationToken ct)
        {
            if (Count == 0) return;
            int[] indexes = [.. _indexes];
            short[] states = [.. _states];
            string?[] results = [.. _results], errors = [.. _errors], resultTuples = [.. _resultTuples];
            await DatabaseRetry.RunAsync(token => maps.FlushAsync(mapId, indexes, states, results, errors, token, resultTuples), ct);
            _indexes.Clear();
            _states.Clear();
            _results.Clear();
            _errors.Clear();
            _resultTuples.Clear();
        }
    }
}
