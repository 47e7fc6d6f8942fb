using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace Jobs.Core.Functions;

/// <summary>
/// Strings in a parsed <see cref="JsonElement"/> are only decoded when read, so bytes that are not UTF-8 inside a
/// JSON string — or an escaped lone surrogate such as <c>\ud800</c> in a property name — pass parsing and fail
/// later, wherever something reads them ("Cannot transcode invalid UTF-8", "missing low surrogate").
/// </summary>
public static class JsonUtf8
{
    /// <summary>
    /// Where in <paramref name="element"/> (named <paramref name="path"/>) the first string or property name that
    /// cannot be read as text is; null when all can. Only JSON holding bytes that are not UTF-8 or a \u escape is walked.
    /// </summary>
    public static string? FindInvalid(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Undefined) return null;
        var raw = JsonMarshal.GetRawUtf8Value(element);
        return Utf8.IsValid(raw) && raw.IndexOf("\\u"u8) < 0 ? null : Find(element, path);
    }

    /// <summary>What <see cref="FindInvalid"/> found, worded for the caller.</summary>
    public static string Explain(string where) =>
        $"{where} is not text: it holds bytes that are not UTF-8 or a lone surrogate escape (such as \\ud800); JSON text is Unicode in UTF-8.";

    private static string? Find(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                try
                {
                    _ = element.GetString();
                    return null;
                }
                catch (InvalidOperationException)
                {
                    return path;
                }
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                    if (Find(item, $"{path}[{i++}]") is { } found) return found;
                return null;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = property.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        return $"{path} (a property name)";
                    }
                    if (Find(property.Value, $"{path}.{name}") is { } found) return found;
                }
                return null;
            default:
                return null;
        }
    }
}
