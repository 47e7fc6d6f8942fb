using System.Text.Json.Nodes;

namespace Jobs.Core.Functions.Python;

/// <summary>The exception a Python function raised, with the remote type, message and traceback.</summary>
public sealed class PythonFunctionException(string type, string message, string traceback, JsonArray? args = null) : Exception(message), IErrorType, IErrorArgs
{
    public string PythonType { get; } = type;
    string IErrorType.ErrorType => PythonType;
    public override string StackTrace { get; } = traceback;

    /// <summary>The exception's args, as python3's host sent them (when JSON could carry them).</summary>
    public JsonArray? Args { get; } = args;
}
