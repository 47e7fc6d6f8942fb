using System.Globalization;

/// <summary>The walkthroughs' assertions: a failed one ends the program with its message (exit code 1).</summary>
internal static class Check
{
    public static void That(bool condition, string what)
    {
        if (!condition) throw new WalkthroughFailed(what);
    }

    public static void Equal(object expected, object actual, string what) =>
        That(Equals(Text(expected), Text(actual)), $"{what}: expected {Text(expected)}, got {Text(actual) ?? "null"}");

    /// <summary>A JSON value as each client hands it over (long, double, JsonElement, JToken, UntypedNode …) in one spelling.</summary>
    public static string Text(object value) => value switch
    {
        null => null,
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    public static void Step(string what) => Console.WriteLine($"ok   {what}");
}

internal sealed class WalkthroughFailed(string message) : Exception(message);
