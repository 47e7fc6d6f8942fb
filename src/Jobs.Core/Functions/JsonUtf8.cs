using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace Jobs.Core.Functions;

/// <summary>
/// Strings in a parsed <see cref="JsonElement"/> are only decoded when read, so bytes that are not UTF-8 inside a
/// JSON string pass parsing and fail later, wherever something reads them ("Cannot transcode invalid UTF-8").
/// </summary>
public static class JsonUtf8
{
    /// <summary>Where in <paramref name="element"/> (named <paramref name="path"/>) the first string or property name that is not UTF-8 is; null when all are.</summary>
    public static string? FindInvalid(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Undefined || Utf8.IsValid(JsonMarshal.GetRawUtf8Value(element))) return null;
        return Find(element, path);
    }

    private static string? Find(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return Utf8.IsValid(JsonMarshal.GetRawUtf8Value(element)) ? null : path;
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
