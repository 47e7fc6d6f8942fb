using System.Text.Json;
using Jobs.Core.Functions;
using Jobs.Api.Queues;
using Jobs.Core.Hangfire;

namespace Jobs.Api.Problems;

/// <summary>
/// The checks POST /jobs, POST /maps and POST /schedules share, worded once: a refusal names its field, and input
/// echoed back is cut to <see cref="EchoLength"/> characters (a 10,000-character name is not sent back whole).
/// </summary>
internal static class SubmissionRules
{
    public const int EchoLength = 100;

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

    /// <summary>Caller input as a refusal quotes it.</summary>
    public static string Echo(string text) => text.Length <= EchoLength ? text : text[..EchoLength] + "…";
}
