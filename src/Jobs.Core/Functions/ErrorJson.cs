using System.Text.Json.Nodes;

namespace Jobs.Core.Functions;

/// <summary>
/// An exception as jobs and map items store it: <c>{ type, message, stackTrace }</c>, the remote traceback, and
/// <c>args</c> (a JSON array) when the exception says what it was made with (a Python exception's <c>args</c>), so a
/// client can rebuild it from its type and args as pickle does.
/// </summary>
public static class ErrorJson
{
    public static string From(Exception e)
    {
        var error = new JsonObject
        {
            ["type"] = TypeOf(e),
            // A message may quote what the function saw or returned: PostgreSQL's jsonb must be able to store it.
            ["message"] = MaybeEncodingError.Carryable(e.Message),
            ["stackTrace"] = MaybeEncodingError.Carryable(UserFrames(e.StackTrace)),
        };
        // Args only as jsonb can store them: otherwise left out (the message stays), never a failure to store the failure.
        if (e is IErrorArgs { Args: JsonArray args } && args.ToJsonString() is var json && MaybeEncodingError.Problem(json) is null
            && json.Length <= MaxArgsBytes)
            error["args"] = args.DeepClone();
        return error.ToJsonString();
    }

    /// <summary>The most JSON an error's <c>args</c> may take (python3's host sends no more either).</summary>
    public const int MaxArgsBytes = 64 * 1024;

    /// <summary>The <c>error.type</c> clients see: a Python function's exception keeps its Python type; our own errors keep the names clients match on.</summary>
    public static string TypeOf(Exception e) => e is IErrorType named ? named.ErrorType : e.GetType().FullName ?? e.GetType().Name;

    /// <summary>An error no exception was thrown for (a cancel decided by the API).</summary>
    public static string Of(Type type, string message) =>
        new JsonObject { ["type"] = JobError.TypeName(type), ["message"] = MaybeEncodingError.Carryable(message), ["stackTrace"] = "" }.ToJsonString();

    /// <summary>The function's own frames: what is below the reflection call into it is ours, not the user's.</summary>
    private static string UserFrames(string? stackTrace)
    {
        if (stackTrace is null) return "";
        var lines = stackTrace.Split('\n');
        var cut = Array.FindIndex(lines, l => l.Contains("at System.Reflection.", StringComparison.Ordinal)
                                           || l.Contains("at " + typeof(ClrJobFunction).FullName, StringComparison.Ordinal));
        return string.Join('\n', cut > 0 ? lines[..cut] : lines).TrimEnd();
    }
}

/// <summary>An exception that says what it was made with (<c>error.args</c>): a Python exception's args.</summary>
public interface IErrorArgs
{
    JsonArray? Args { get; }
}

/// <summary>An exception whose <c>error.type</c> is not its .NET name (a Python exception's type, a stable name of ours).</summary>
public interface IErrorType
{
    string ErrorType { get; }
}
