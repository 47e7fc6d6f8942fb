using System.Text.Json;
using System.Text.Json.Nodes;
using Jobs.Core.Functions;
using Jobs.Api.SingleJobs;
using Jobs.Api.Queues;
using Jobs.Core.Queue;

namespace Jobs.Api.Problems;

/// <summary>
/// The checks POST /jobs, POST /maps and POST /schedules share, worded once: a refusal names its field, and input
/// echoed back is cut to <see cref="EchoLength"/> characters (a 10,000-character name is not sent back whole).
/// </summary>
internal static class SubmissionRules
{
    public const int EchoLength = 100;

    /// <summary>The longest timeout a job or a map item may ask for: a week.</summary>
    public const double MaxTimeoutSeconds = 7 * 86_400;

    /// <summary><c>timeoutSeconds</c> of POST /jobs, POST /maps and schedules: more than 0 and at most <see cref="MaxTimeoutSeconds"/>.</summary>
    public static void CheckTimeout(double? timeoutSeconds)
    {
        if (timeoutSeconds is { } timeout && !(timeout > 0 && timeout <= MaxTimeoutSeconds))
            throw new RequestRefusedException(400, "Invalid timeoutSeconds", $"timeoutSeconds is more than 0 and at most {MaxTimeoutSeconds:0} (a week).", "timeoutSeconds");
    }

    /// <summary>The registered function <paramref name="name"/>: 400 when none is named, 404 when it is unknown.</summary>
    public static async ValueTask<JobFunction> FunctionAsync(FunctionRegistry registry, string? name, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new RequestRefusedException(400, "Missing function", "Give the name of a registered function in 'function' (GET /functions lists them).", "function");
        return await registry.FindAsync(name, ct) is { } function
            ? function
            : throw new RequestRefusedException(404, "Unknown function",
                $"No function named '{Echo(name)}' is registered. GET /functions lists the registered functions." +
                (name.StartsWith("py:", StringComparison.Ordinal)
                    ? $" A Python function is offered while a live worker loads its module: point the workers at the module's file " +
                      $"(Python__Modules__N__Path), or list a library function in Python__Imports__N."
                    : ""), "function");
    }

    /// <summary>The queue asked for (default: "default"); 400 when it is not a valid name or not one the service knows.</summary>
    public static string Queue(KnownQueues known, string? queue)
    {
        queue ??= QueueNames.Default;
        if (!QueueNames.IsValid(queue))
            throw new RequestRefusedException(400, "Invalid queue", $"'{Echo(queue)}' is not a valid queue: {QueueNames.Rule}.", "queue");
        return known.IsKnown(queue)
            ? queue
            : throw new RequestRefusedException(400, "Unknown queue",
                $"No worker serves queue '{queue}' and Jobs:Queues does not declare it, so nothing would run it. " +
                $"Known queues: {string.Join(", ", known.Names())}. Start workers with Worker:Queues naming it, or declare it in Jobs:Queues.", "queue");
    }

    /// <summary>
    /// 400 when the arguments (<paramref name="args"/>, <paramref name="kwargs"/>, each as it will be stored) nest deeper
    /// than Jobs:MaxJsonDepth: the one limit results keep too, so everything stored can be served.
    /// </summary>
    public static void Depth(JsonElement args, JsonElement kwargs, int maxDepth, string argsField = "args")
    {
        foreach (var (value, field) in new[] { (args, argsField), (kwargs, "kwargs") })
            if (StoredValueLimits.DepthProblem(value, field, maxDepth) is { } problem)
                throw new RequestRefusedException(400, "Nested too deeply", problem, field);
    }

    /// <summary>The most tuple locations one submission names.</summary>
    public const int MaxTuples = 10_000;

    /// <summary>
    /// Where a submission's arguments held Python tuples, as stored (<c>{"args": [...], "kwargs": [...]}</c>, or null
    /// for none): 400 naming the pointer unless each points at an array of the value it names.
    /// </summary>
    public static string? Tuples(TupleLocations? tuples, JsonElement args, JsonElement kwargs)
    {
        var stored = new JsonObject();
        if (Pointers(tuples?.Args, args, "args") is { } inArgs) stored["args"] = inArgs;
        if (Pointers(tuples?.Kwargs, kwargs, "kwargs") is { } inKwargs) stored["kwargs"] = inKwargs;
        return stored.Count == 0 ? null : stored.ToJsonString();
    }

    /// <summary>
    /// Per item of a map, where its call's values held Python tuples (<c>{"args", "kwargs"}</c> JSON, null for an item
    /// with none); null when no item has any. 400 naming the pointer unless each names an array within an item, or in kwargs.
    /// </summary>
    public static string?[]? ItemTuples(Maps.MapTupleLocations? tuples, JsonElement items, JsonElement kwargs, bool star)
    {
        var inKwargs = Pointers(tuples?.Kwargs, kwargs, "kwargs");
        var inItems = Pointers(tuples?.Items, items, "items", withinAnItem: true);
        if (inKwargs is null && inItems is null) return null;
        // Each pointer into items, within its item; the call's args are the item itself (star) or [item].
        var byItem = new List<string>?[items.GetArrayLength()];
        foreach (var pointer in inItems?.Select(p => p!.GetValue<string>()) ?? [])
        {
            var slash = pointer.IndexOf('/', 1) is > 0 and var at ? at : pointer.Length;
            (byItem[int.Parse(pointer.AsSpan(1, slash - 1), System.Globalization.CultureInfo.InvariantCulture)] ??= [])
                .Add(star ? pointer[slash..] : "/0" + pointer[slash..]);
        }
        return [.. byItem.Select(args =>
        {
            if (args is null && inKwargs is null) return null;
            var call = new JsonObject();
            if (args is not null) call["args"] = new JsonArray([.. args.Select(p => (JsonNode?)p)]);
            if (inKwargs is not null) call["kwargs"] = inKwargs.DeepClone();
            return call.ToJsonString();
        })];
    }

    /// <summary>
    /// The pointers of <c>tuples.{field}</c> once each is known to name an array in <paramref name="value"/> (with
    /// <paramref name="withinAnItem"/>: within one of its elements, not the value itself); null for none; 400 otherwise.
    /// </summary>
    private static JsonArray? Pointers(List<string>? pointers, JsonElement value, string field, bool withinAnItem = false)
    {
        if (pointers is not { Count: > 0 }) return null;
        if (pointers.Count > MaxTuples)
            throw new RequestRefusedException(400, "Too many tuples", $"tuples.{field} names {pointers.Count} places; at most {MaxTuples}.", $"tuples.{field}");
        for (var i = 0; i < pointers.Count; i++)
            if (pointers[i] is not { } pointer || (withinAnItem && pointer.Length < 2) || !PointsAtArray(value, pointer))
                throw new RequestRefusedException(400, "Invalid tuples",
                    $"tuples.{field}[{i}] ('{Echo(pointers[i] ?? "null")}') is not a JSON Pointer to an array {(withinAnItem ? "within an item of" : "in")} {field}.",
                    $"tuples.{field}");
        return new JsonArray([.. pointers.Select(p => (JsonNode?)p)]);
    }

    /// <summary>Whether the JSON Pointer (RFC 6901) <paramref name="pointer"/> names an array in <paramref name="value"/>.</summary>
    private static bool PointsAtArray(JsonElement value, string pointer)
    {
        if (pointer.Length > 0 && pointer[0] != '/') return false;
        var at = value;
        foreach (var token in pointer.Length == 0 ? [] : pointer[1..].Split('/'))
        {
            var key = token.Replace("~1", "/").Replace("~0", "~");
            if (at.ValueKind == JsonValueKind.Array)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
                    || key != index.ToString(System.Globalization.CultureInfo.InvariantCulture) || index >= at.GetArrayLength()) return false;
                at = at[index];
            }
            else if (at.ValueKind != JsonValueKind.Object || !at.TryGetProperty(key, out at)) return false;
        }
        return at.ValueKind == JsonValueKind.Array;
    }

    /// <summary>Caller input as a refusal quotes it.</summary>
    public static string Echo(string text) => text.Length <= EchoLength ? text : text[..EchoLength] + "…";
}
