using System.Text.RegularExpressions;

namespace Jobs.Core.Hangfire;

public static partial class QueueNames
{
    public const string Default = "default";

    /// <summary>Hangfire's rule for queue names: lowercase letters, digits, underscores and dashes.</summary>
    public const string Rule = "a queue name is 1–50 lowercase letters, digits, '_' or '-'";

    public static bool IsValid(string? name) => name is { Length: > 0 and <= 50 } && Pattern().IsMatch(name);

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex Pattern();
}
