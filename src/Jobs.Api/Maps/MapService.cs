using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hangfire;
using Jobs.Api.SingleJobs;
using Jobs.Api.Notifications;
using Jobs.Api.Problems;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Jobs.Api.Queues;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Idempotency;
using Jobs.Core.Maps;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Maps;

/// <summary>map / starmap / imap over HTTP: validating and storing maps, waiting for them, canceling them.</summary>
internal sealed class MapService(
    MapSubmissionStore maps,
    MapSubmitter submitter,
    MapQueries queries,
    FunctionRegistry registry,
    KnownQueues queues,
    ChangeWaiters changes,
    JobStorage storage,
    IBackgroundJobClient hangfire,
    IOptions<JobsOptions> options,
    ILogger<MapService> logger)
{
    public async Task<(MapRecord Map, bool Created)> SubmitAsync(SubmitMapRequest request, string? idempotencyKey, string? caller, CancellationToken ct)
    {
        var queue = SubmissionRules.Queue(queues, request.Queue);
        var function = await SubmissionRules.FunctionAsync(registry, request.Function, ct);
        if (request.Items.ValueKind != JsonValueKind.Array)
            throw new RequestRefusedException(400, "Missing items", "items must be a JSON array with one entry per call.", "items");
        // An empty map is a finished one (Pool.map(f, []) is []): stored succeeded, with no chunk and no Hangfire job.
        var total = request.Items.GetArrayLength();
        if (total > options.Value.MaxMapItems)
            throw new RequestRefusedException(400, "Too many items", $"A map has at most {options.Value.MaxMapItems} items (Jobs:MaxMapItems); split it.", "items");
        if (request.Chunksize is < 1 or > 1_000_000)
            throw new RequestRefusedException(400, "Invalid chunksize", "chunksize is between 1 and 1,000,000.", "chunksize");
        SubmissionRules.CheckTimeout(request.TimeoutSeconds);
        if (request.Kwargs.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.Object))
            throw new RequestRefusedException(400, "Invalid kwargs", "kwargs must be a JSON object.", "kwargs");
        if ((JsonUtf8.FindInvalid(request.Items, "items") ?? JsonUtf8.FindInvalid(request.Kwargs, "kwargs")) is { } notUtf8)
            throw new RequestRefusedException(400, "Not text", JsonUtf8.Explain(notUtf8), notUtf8);

        SubmissionRules.Depth(default, request.Kwargs, options.Value.MaxJsonDepth);

        // Every item is bound now, so a bad one is refused before anything is stored, naming its index.
        var itemArgs = new List<string>(total);
        var index = 0;
        foreach (var item in request.Items.EnumerateArray())
        {
            if (request.Star && item.ValueKind != JsonValueKind.Array)
                throw new RequestRefusedException(400, "Invalid item", $"items[{index}] must be an array of positional arguments (star is true).", $"items[{index}]");
            var args = request.Star ? item.GetRawText() : $"[{item.GetRawText()}]";
            // The request body may nest a few levels deeper than a stored value (its own object and array around it).
            using (var parsed = JsonDocument.Parse(args, new JsonDocumentOptions { MaxDepth = options.Value.MaxJsonDepth + 8 }))
            {
                SubmissionRules.Depth(parsed.RootElement, default, options.Value.MaxJsonDepth, $"items[{index}]");
                try
                {
                    function.Validate(parsed.RootElement, request.Kwargs);
                }
                catch (ArgumentBindingException e)
                {
                    throw new RequestRefusedException(400, "An item does not fit the function", $"items[{index}]: {e.Message}", $"items[{index}]");
                }
            }
            itemArgs.Add(args);
            index++;
        }

        int? slots = null;
        int Slots() => slots ??= CountSlots(queue);
        var chunksize = request.Chunksize ?? DefaultChunksize(total, Slots());
        var window = options.Value.MapWindow > 0 ? options.Value.MapWindow : Slots();
        var kwargs = request.Kwargs.ValueKind == JsonValueKind.Object ? request.Kwargs.GetRawText() : "{}";
        var claim = IdempotencyKeys.Claim(idempotencyKey, caller, () => SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n',
            [function.Name, queue, request.Star ? "star" : "map", request.Chunksize?.ToString() ?? "", request.TimeoutSeconds?.ToString("R") ?? "", kwargs,
             JsonSerializer.Serialize(request.Tuples), .. itemArgs]))),
            options.Value.IdempotencyWindow);

        var itemTuples = SubmissionRules.ItemTuples(request.Tuples, request.Items, request.Kwargs, request.Star);

        try
        {
            return await submitter.SubmitAsync(new NewMap(function.Name, kwargs, request.Star, queue, chunksize, window,
                request.TimeoutSeconds ?? function.DefaultTimeoutSeconds, options.Value.Retention), itemArgs, itemTuples, claim, ct);
        }
        catch (IdempotencyConflictException e)
        {
            throw IdempotencyKeys.Reused(e);
        }
    }

    /// <summary>Python's default: ceil(len / (4 × worker slots)).</summary>
    private static int DefaultChunksize(int total, int slots) => Math.Max(1, (int)Math.Ceiling(total / (4.0 * slots)));

    /// <summary>The worker slots of live servers on the queue (the processor count while none is live).</summary>
    private int CountSlots(string queue)
    {
        var slots = storage.GetMonitoringApi().Servers().Where(s => s.Queues.Contains(queue)).Sum(s => s.WorkersCount);
        return slots == 0 ? Environment.ProcessorCount : slots;
    }

    public Task<MapRecord?> WaitAsync(Guid id, double seconds, CancellationToken ct) =>
        changes.WaitAsync(Channels.MapProgress, id, token => queries.GetAsync(id, token), map => JobStates.IsFinished(map.State),
            TimeSpan.FromSeconds(Math.Min(seconds, options.Value.MaxWaitSeconds)), ct);

    /// <summary>A stream line's <c>tuples</c> member (where its result held Python tuples), or nothing.</summary>
    private static string Tuples(MapItemOutcome item) => item.ResultTuples is { } tuples ? $",\"tuples\":{tuples}" : "";

    /// <summary>NDJSON lines, one per item as it finishes (in input or completion order), until every item is done.</summary>
    public async Task StreamAsync(MapRecord map, bool inputOrder, Stream output, CancellationToken ct)
    {
        var writer = new StreamWriter(output, new UTF8Encoding(false)) { NewLine = "\n", AutoFlush = false };
        var next = 0;
        (long Xid, int Index) last = (0, -1);
        var heldBackLooks = 0;
        var emitted = 0;
        while (emitted < map.Total)
        {
            using var waiter = changes.Register(Channels.MapProgress, map.Id);
            var (batch, heldBack) = inputOrder
                ? (await queries.FinishedFromIndexAsync(map.Id, next, 1000, ct), false)
                : await queries.FinishedAfterAsync(map.Id, last, 1000, ct);
            var written = 0;
            foreach (var item in batch)
            {
                if (inputOrder && item.Index != next) break; // keep input order: stop at the first gap
                if (item.LargeResult)
                {
                    // Copied from the database as it comes, not held: a result may be Jobs:MaxResultBytes.
                    await writer.WriteAsync($$"""{"index":{{item.Index}},"result":""");
                    await writer.FlushAsync(ct);
                    await queries.CopyItemResultAsync(map.Id, item.Index, output, ct);
                    await writer.WriteLineAsync(Tuples(item) + "}");
                }
                else
                    await writer.WriteLineAsync(item.State == MapItemStates.Succeeded
                        ? $$"""{"index":{{item.Index}},"result":{{item.Result}}{{Tuples(item)}}}"""
                        : $$"""{"index":{{item.Index}},"error":{{item.Error}}}""");
                next = item.Index + 1;
                last = (item.Xid, item.Index);
                written++;
            }
            emitted += written;
            await writer.FlushAsync(ct);
            // Outcomes held back wait for an older transaction to end, which sends no notification: look again soon,
            // less and less often (10 ms, doubling up to 1 s) should that transaction be a long one.
            heldBackLooks = heldBack && written == 0 ? heldBackLooks + 1 : 0;
            if (written == 0)
                await Task.WhenAny(waiter.Task, Task.Delay(heldBack ? TimeSpan.FromMilliseconds(Math.Min(1000, 10 << Math.Min(heldBackLooks - 1, 7))) : TimeSpan.FromSeconds(1), ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// DELETE /maps/{id}: cancels every item not yet done and stops the chunks still running, in time independent of
    /// the map's size; its items are marked canceled right after (the workers' rescuer finishes that should this
    /// process die first).
    /// </summary>
    public async Task<MapRecord?> CancelAsync(Guid id, CancellationToken ct)
    {
        var outcome = await maps.CancelAsync(id, options.Value.Retention, ct);
        if (outcome is null) return null;
        if (!outcome.Value.Canceled)
            throw new RequestRefusedException(409, "Map already finished", $"Map {id} has already {outcome.Value.State}; there is nothing to cancel.");
        // At most the map's window of chunks has a Hangfire job; the rest never had one.
        // A Hangfire job carrying a run of chunks is listed once per chunk.
        foreach (var hangfireJobId in outcome.Value.HangfireJobs.Distinct()) hangfire.Delete(hangfireJobId);
        _ = Task.Run(async () =>
        {
            try
            {
                await maps.SettleCanceledAsync(id, CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Could not mark the items of canceled map {MapId}; the rescuer does it after Jobs:DispatchGracePeriod", id);
            }
        }, CancellationToken.None);
        return await queries.GetAsync(id, ct);
    }
}
