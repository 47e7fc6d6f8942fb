using System.Text.RegularExpressions;

namespace Jobs.Core.Queue;

public static partial class QueueNames
{
    public const string Default = "default";

    /// <summary>Hangfire's rule for queue names: lowercase letters, digits, underscores and dashes.</summary>
    public const string Rule = "a queue name is 1–50 lowercase letters, digits, '_' or '-'";

    public static bool IsValid(string? name) => name is { Length: > 0 and <= 50 } && Pattern().IsMatch(name);

    /// <summary>A Jobs:Queues entry: a queue name, or a prefix of one followed by '*' ("reports-*", or "*" for any).</summary>
    public static bool IsValidDeclaration(string? entry) =>
        entry is { Length: > 0 } && (entry[^1] == '*' ? entry.Length == 1 || IsValid(entry[..^1]) : IsValid(entry));

    /// <summary>Whether <paramref name="queue"/> is what <paramref name="declaration"/> (a Jobs:Queues entry) declares.</summary>
    public static bool Declares(string declaration, string queue) =>
        declaration[^1] == '*' ? queue.StartsWith(declaration[..^1], StringComparison.Ordinal) : declaration == queue;

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex Pattern();
}
