using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jobs.Core.Configuration;

namespace Jobs.Core.Functions;

/// <summary>
/// The limits every stored JSON value keeps, checked where the value is written — arguments by the API
/// (<see cref="DepthProblem(JsonElement, string, int)"/>), results by the worker that produced them
/// (<see cref="CheckResult"/>) — so that whatever is stored can be read back and served to every client.
/// </summary>
public static class StoredValueLimits
{
    /// <summary>How deep <paramref name="value"/> nests arrays and objects (<c>1</c> 0, <c>[]</c> 1, <c>[[1]]</c> 2), counting no further than <paramref name="stopAfter"/>.</summary>
    public static int Depth(JsonNode? value, int stopAfter)
    {
        if (value is not (JsonArray or JsonObject)) return 0;
        if (stopAfter <= 0) return 1;
        var deepest = 0;
        var children = value is JsonArray array ? array : ((JsonObject)value).Select(p => p.Value);
        foreach (var child in children)
        {
            deepest = Math.Max(deepest, Depth(child, stopAfter - 1));
            if (deepest >= stopAfter) break;
        }
        return 1 + deepest;
    }

    /// <inheritdoc cref="Depth(JsonNode?, int)"/>
    public static int Depth(JsonElement value, int stopAfter)
    {
        if (value.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object)) return 0;
        if (stopAfter <= 0) return 1;
        var deepest = 0;
        var children = value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : value.EnumerateObject().Select(p => p.Value);
        foreach (var child in children)
        {
            deepest = Math.Max(deepest, Depth(child, stopAfter - 1));
            if (deepest >= stopAfter) break;
        }
        return 1 + deepest;
    }

    /// <summary>Why <paramref name="value"/> (named <paramref name="what"/>) nests too deeply to be stored, or null when it does not.</summary>
    public static string? DepthProblem(JsonElement value, string what, int maxDepth) =>
        Depth(value, maxDepth) is var depth && depth > maxDepth ? TooDeep(what, maxDepth) : null;

    /// <summary>
    /// The JSON text of a function's result, as <see cref="MaybeEncodingError.Encode"/> makes it, or a
    /// MaybeEncodingError when it nests deeper than <see cref="JobsOptions.MaxJsonDepth"/> or is larger than
    /// <see cref="JobsOptions.MaxResultBytes"/>.
    /// </summary>
    public static string CheckResult(JsonNode? result, JobsOptions limits)
    {
        if (Depth(result, limits.MaxJsonDepth) > limits.MaxJsonDepth)
            throw new MaybeEncodingError($"Error sending result: {TooDeep("it", limits.MaxJsonDepth)}");
        var json = MaybeEncodingError.Encode(result, "result", jsonb: false);
        // Within the limit in UTF-16 code units is within it in bytes for ASCII; count bytes only when it matters.
        if ((long)json.Length * 3 > limits.MaxResultBytes && Encoding.UTF8.GetByteCount(json) is var bytes && bytes > limits.MaxResultBytes)
            throw new MaybeEncodingError($"Error sending result: its JSON is {bytes:N0} bytes, more than the {limits.MaxResultBytes:N0} bytes " +
                                         $"this service stores for one result ({JobsOptions.MaxResultBytesKey}). Return less, or store it elsewhere and return where.");
        return json;
    }

    private static string TooDeep(string what, int maxDepth) =>
        $"{what} nests arrays and objects more than {maxDepth} levels deep, deeper than this service stores ({JobsOptions.MaxJsonDepthKey}).";
}
