using System.Diagnostics;
using System.Text.Json;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Maps;

/// <summary>
/// Runs one chunk of a map for the <see cref="Executor"/>: the function once per item, in index order, with outcomes written in flushes
/// (every <see cref="FlushItems"/> items or <see cref="FlushInterval"/>). A failing item records its error and
/// the chunk goes on, as Pool.map's workers do. A chunk re-run after a crash skips the items already done.
/// Each item has what a single job has: the map's timeoutSeconds (or the function's default), cancellation with the
/// map (DELETE /maps/{id} deletes the chunk's Hangfire job, which cancels <c>ct</c>), the jobs.started/finished/duration
/// metrics; the chunk is one span. Progress an item reports is not kept: a map's progress is its counts. A chunk that
/// ends gives its turn to the map's next chunk (<see cref="MapWindow"/>) — unless its items were quick: then, within
/// <see cref="CarrySlice"/>, the same Hangfire job carries on with the map's next chunks, taken in runs sized to the
/// items' pace (so chunksize 1 is not a Hangfire job per item); DELETE /maps/{id} deletes that one Hangfire job.
/// </summary>
public sealed class MapChunkRunner(MapExecutionStore maps, MapQueries queries, MapWindow window, FunctionInvoker invoker, JobsMetrics metrics, IOptions<JobsOptions> options, ILogger<MapChunkRunner> logger,
    ILoggerFactory loggers) : IRunsMapChunks
{
    /// <summary>One Information line per chunk's end, not per item: a map of 10⁶ items writes one line per chunk (<see cref="JobOutcomeLog.ChunkEnded"/>).</summary>
    private readonly ILogger _outcomes = loggers.CreateLogger(JobOutcomeLog.MapCategory);

    private const int FlushItems = 1000;
    private static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// How long one Hangfire job carries on with the map's next chunks while its items are quick (<see cref="MapExecutionStore.FinishRunAsync"/>):
    /// long enough that a Hangfire job's own cost is small beside its items (so chunksize 1 runs at the default
    /// chunksize's items/s), short enough that a job or map submitted by anyone else meanwhile gets the next free slot
    /// soon after (the run then ends and its turn goes to a new Hangfire job, queued behind them).
    /// </summary>
    public static readonly TimeSpan CarrySlice = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Claims chunk <paramref name="chunk"/> of <paramref name="mapId"/> for <paramref name="hangfireRun"/> and runs it (see
    /// the class summary). Returns <see cref="RunEnd.Refused"/> when its end was not recorded (the chunks no longer this run's).
    /// </summary>
    public async Task<RunEnd> RunAsync(Run hangfireRun, Guid mapId, int chunk, CancellationToken ct)
    {
        var hangfireJobId = hangfireRun.HangfireJobId;
        // Retried through a PostgreSQL restart, as a job's claim is: a claim that threw failed the Hangfire job and
        // left the chunk enqueued for good (found by the chaos soak).
        var claimed = await DatabaseRetry.RunAsync(token => maps.ClaimChunkAsync(mapId, chunk, hangfireJobId, hangfireRun.ServerId, token, hangfireRun.Id), ct);
        if (claimed is null)
        {
            logger.LogInformation("Chunk {Chunk} of map {MapId} is not claimable by Hangfire job {HangfireJobId}; skipping", chunk, mapId, hangfireJobId);
            return RunEnd.Recorded;
        }
        using var busy = metrics.InFlight(claimed.Queue);
        using var activity = TelemetrySetup.Source.StartActivity($"run map chunk {claimed.Function}", ActivityKind.Consumer);
        activity?.SetTag("jobs.map_id", mapId).SetTag("jobs.chunk", chunk).SetTag("jobs.function", claimed.Function)
            .SetTag("jobs.queue", claimed.Queue).SetTag("hangfire.job_id", hangfireJobId);
        var timeout = claimed.TimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        using var kwargs = JsonDocument.Parse(claimed.Kwargs);
        var itemContext = new JobContext(mapId, claimed.Attempts, (_, _, _) => Task.CompletedTask);
        var run = new CarriedRun(claimed.FirstChunk, claimed.EndChunk, claimed.FirstIndex, claimed.EndIndex, claimed.Attempts, claimed.Crashes);
        var slice = Stopwatch.StartNew();
        int itemsRun = 0, chunksRun = 0;
        var perItem = TimeSpan.MaxValue;
        while (true)
        {
            var (end, ran, took) = await RunChunksAsync(mapId, run, claimed, kwargs.RootElement, itemContext, timeout, hangfireRun, ct);
            if (end is null) return RunEnd.Recorded; // released at shutdown
            itemsRun += ran;
            chunksRun += run.EndChunk - run.FirstChunk;
            activity?.SetTag("jobs.items", itemsRun).SetTag("jobs.chunks", chunksRun);
            // The items' pace: the quickest run's, so one item delayed by a busy machine does not keep the runs small.
            if (ran > 0 && took / ran < perItem) perItem = took / ran;
            // Quick items: carry on with the map's next chunks in this Hangfire job, about as many items as fit in
            // what is left of the slice at that pace, at least as many again as so far (each run's own cost is then
            // paid a handful of times per slice) and at most 16 times as many (items may turn slow: a run overruns
            // the slice by at most what ran before it).
            var left = CarrySlice - slice.Elapsed;
            var carryItems = end == "done" && left > TimeSpan.Zero && itemsRun > 0
                ? (int)Math.Clamp(left / (perItem + TimeSpan.FromTicks(1)), itemsRun, Math.Max(claimed.EndIndex - claimed.FirstIndex, 16 * itemsRun))
                : 0;
            var (next, carried, ended) = await DatabaseRetry.RunAsync(token =>
                maps.FinishRunAsync(mapId, run.FirstChunk, run.EndChunk, hangfireJobId, hangfireRun.ServerId, end, options.Value.Retention, carryItems, token, hangfireRun.Id));
            // A canceled map's chunks were ended by its cancel.
            if (!ended && end != "canceled")
            {
                logger.LogInformation("Chunks {First}–{Last} of map {MapId}: the end of run {RunId} is not recorded — the chunks are no longer this " +
                    "run's (taken over by another run after this worker lost them, or ended by an earlier try of this write whose answer was lost)", run.FirstChunk, run.EndChunk - 1, mapId, hangfireRun.Id);
                return RunEnd.Refused;
            }
            if (carried is null)
            {
                // Created now, the next chunk's Hangfire job queues behind whatever others submitted while this one ran.
                if (next.Count > 0) await window.DispatchOrLeaveToRescuerAsync(next);
                return RunEnd.Recorded;
            }
            run = carried;
        }
    }

    /// <summary>
    /// Runs the items of a run of chunks that have no outcome yet and writes their outcomes; returns how the run ends
    /// ("done" or "canceled"; null when it was handed back at shutdown), how many items ran and how long they took.
    /// </summary>
    private async Task<(string? End, int Ran, TimeSpan Took)> RunChunksAsync(Guid mapId, CarriedRun run, ClaimedChunk claimed, JsonElement kwargs, JobContext itemContext,
        TimeSpan? timeout, Run hangfireRun, CancellationToken ct)
    {
        var items = await DatabaseRetry.RunAsync(token => maps.PendingItemsAsync(mapId, run.FirstIndex, run.EndIndex, token), ct);
        var outcomes = new OutcomeBuffer(items.Count < FlushItems ? items.Count : FlushItems, (run.FirstChunk, hangfireRun.Id));
        var sinceFlush = Stopwatch.StartNew();
        // After a crash (its worker died while running it), each outcome is written before the next item starts, so
        // the first item without one is the item that was running when a worker died again; once those deaths reach
        // Jobs:MaxWorkerCrashes, that item fails and the rest run on — a poison item costs itself, not its run.
        var careful = run.Crashes > 0;
        var quarantined = run.Crashes >= options.Value.MaxWorkerCrashes;
        var firstRun = run.Attempts == 1;
        var itemClock = new Stopwatch();
        // One outcome line per chunk, as when each chunk was a Hangfire job of its own.
        var chunks = Enumerable.Range(0, run.EndChunk - run.FirstChunk).Select(_ => new ChunkTally()).ToArray();
        var ran = 0;
        foreach (var (index, argsJson, tuples) in items)
        {
            if (ct.IsCancellationRequested) break;
            var tally = chunks[Math.Min(chunks.Length - 1, (index - run.FirstIndex) / claimed.Chunksize)];
            ran++;
            if (quarantined)
            {
                var crashed = new WorkerCrashedException(claimed.Function, run.Crashes);
                tally.FirstFailure ??= crashed;
                outcomes.Add(index, MapItemStates.Failed, null, Error(crashed), null);
                tally.Failed++;
                quarantined = false;
                await outcomes.FlushAsync(maps, mapId, CancellationToken.None);
                continue;
            }
            // Pickup latency as a job's: from the map's submission to the item's first run (not a re-run's).
            metrics.Started(claimed.Function, claimed.Queue, firstRun ? DateTime.UtcNow - claimed.MapCreatedAt : null);
            // With a timeout, isolated as a single job is (so a function that ignores its token still loses its item on
            // time); without one, inline: maps are hot.
            // Where the item's values held Python tuples: given to the call, and its result's taken back.
            itemContext.ArgumentTuples = tuples;
            itemContext.ResultTuples = null;
            var started = itemClock.Elapsed;
            itemClock.Start();
            var item = await invoker.InvokeAsync(claimed.Function, argsJson, kwargs, itemContext, timeout, isolate: false, ct);
            itemClock.Stop();
            tally.Took += itemClock.Elapsed - started;
            if (item.Interrupted)
            {
                metrics.Finished(claimed.Function, claimed.Queue, JobStates.Canceled, item.Duration);
                break;
            }
            if (item.Failure is null) tally.Succeeded++;
            else
            {
                tally.Failed++;
                tally.FirstFailure ??= item.Failure;
            }
            outcomes.Add(index, item.Failure is null ? MapItemStates.Succeeded : MapItemStates.Failed, item.Result, item.Failure is { } failure ? Error(failure) : null,
                item.Failure is null ? itemContext.ResultTuples : null);
            metrics.Finished(claimed.Function, claimed.Queue, item.Failure is null ? JobStates.Succeeded : JobStates.Failed, item.Duration);
            if (careful || outcomes.Count >= FlushItems || sinceFlush.Elapsed >= FlushInterval)
            {
                await outcomes.FlushAsync(maps, mapId, CancellationToken.None);
                sinceFlush.Restart();
            }
        }
        await outcomes.FlushAsync(maps, mapId, CancellationToken.None);

        if (ct.IsCancellationRequested && !await DatabaseRetry.RunAsync(token => queries.IsCancelRequestedAsync(mapId, token)))
        {
            // Shutdown: hand the chunks back uncounted; Hangfire requeues the job and its re-run does the rest.
            await DatabaseRetry.RunAsync(token => maps.ReleaseRunAsync(mapId, run.FirstChunk, run.EndChunk, hangfireRun.HangfireJobId, token, hangfireRun.Id));
            LogEnd("released");
            ct.ThrowIfCancellationRequested();
            return (null, ran, itemClock.Elapsed);
        }
        var end = ct.IsCancellationRequested ? "canceled" : "done";
        LogEnd(end);
        return (end, ran, itemClock.Elapsed);

        void LogEnd(string outcome)
        {
            for (var c = 0; c < chunks.Length; c++)
            {
                var t = chunks[c];
                JobOutcomeLog.ChunkEnded(_outcomes, mapId, run.FirstChunk + c, outcome, JobOutcomeLog.Milliseconds(t.Took), claimed.Function, claimed.Queue,
                    t.Succeeded, t.Failed, t.FirstFailure is null ? null : ErrorJson.TypeOf(t.FirstFailure), t.FirstFailure is null ? null : JobOutcomeLog.OneLine(t.FirstFailure.Message));
            }
        }
    }

    /// <summary>One chunk's counts within a run, for its outcome line.</summary>
    private sealed class ChunkTally
    {
        public int Succeeded, Failed;
        public TimeSpan Took;
        public Exception? FirstFailure;
    }

    private static string Error(Exception e) => ErrorJson.From(e);

    /// <summary>
    /// Outcomes of items run but not yet written: written together by one statement (<see cref="MapExecutionStore.FlushAsync"/>),
    /// only while the run still owns its chunks (<paramref name="fence"/>).
    /// </summary>
    private sealed class OutcomeBuffer(int capacity, (int Chunk, Guid Run) fence)
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
            await DatabaseRetry.RunAsync(token => maps.FlushAsync(mapId, indexes, states, results, errors, token, resultTuples, fence), ct);
            _indexes.Clear();
            _states.Clear();
            _results.Clear();
            _errors.Clear();
            _resultTuples.Clear();
        }
    }
}
