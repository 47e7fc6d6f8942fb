using Hangfire.Common;

namespace Jobs.Core.Queue;

/// <summary>
/// Hangfire stores the type of each Hangfire job's entry point by name (<c>Namespace.Type, Assembly</c>). When a type
/// moves, Hangfire jobs stored before the move (queued, scheduled, retrying, recurring) must still find it: this maps
/// each former name to the type that answers it now, and leaves every other name to Hangfire's own resolver.
/// </summary>
internal static class FormerTypeNames
{
    private static readonly Dictionary<string, Type> Moved = new(StringComparer.Ordinal)
    {
        // Until issue 25 each feature had its own entry point; one executor now runs both (same methods, same signatures).
        ["Jobs.Core.Jobs.JobRunner, Jobs.Core"] = typeof(Executor),
        ["Jobs.Core.Maps.MapChunkRunner, Jobs.Core"] = typeof(Executor),
    };

    public static Type Resolve(string typeName) =>
        Moved.TryGetValue(typeName, out var type) ? type : TypeHelper.DefaultTypeResolver(typeName);
}
