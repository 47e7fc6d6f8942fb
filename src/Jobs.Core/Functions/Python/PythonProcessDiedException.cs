namespace Jobs.Core.Functions.Python;

/// <summary>The python3 process running a call exited (crashed, killed, or ran out of memory).</summary>
public sealed class PythonProcessDiedException(string message) : Exception(message);
