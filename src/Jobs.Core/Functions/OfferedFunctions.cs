using System.Text.Json.Nodes;
using Jobs.Core.Functions.Python;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Functions;

/// <summary>
/// Functions that live workers offer (jobs.function_offer), for the API, which runs no Python itself: a function is
/// known while at least one worker advertised it within <see cref="Freshness"/>. Read at most every 2 s.
/// </summary>
public sealed class OfferedFunctions(NpgsqlDataSource dataSource, ILogger<OfferedFunctions> logger)
{
    public static readonly TimeSpan Freshness = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(2);
    private readonly Lock _lock = new();
    private (DateTime At, Dictionary<string, JobFunction> Functions) _cache = (DateTime.MinValue, []);

    public IReadOnlyDictionary<string, JobFunction> Current
    {
        get
        {
            lock (_lock)
            {
                // A failed read keeps the last offers (and is retried on the next call): a broken pooled connection
                // must not make every offered function look withdrawn.
                if (DateTime.UtcNow - _cache.At > MaxAge && Load() is { } current) _cache = (DateTime.UtcNow, current);
                return _cache.Functions;
            }
        }
    }

    private Dictionary<string, JobFunction>? Load()
    {
        var functions = new Dictionary<string, JobFunction>(StringComparer.Ordinal);
        try
        {
            using var cmd = dataSource.CreateCommand("""
                SELECT DISTINCT ON (name) definition::text FROM jobs.function_offer
                WHERE seen_at > now() - $1 ORDER BY name, seen_at DESC
                """);
            cmd.Parameters.Add(new() { Value = Freshness });
            using var reader = cmd.ExecuteReader();
            while (reader.Read())
            {
                var offer = JsonNode.Parse(reader.GetString(0))!.AsObject();
                var function = new PythonFunction(offer["module"]!.GetValue<string>(), offer["function"]!.AsObject(), pool: null);
                functions[function.Name] = function;
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning(e, "Could not read the functions workers offer; keeping the last known");
            return null;
        }
        return functions;
    }
}
