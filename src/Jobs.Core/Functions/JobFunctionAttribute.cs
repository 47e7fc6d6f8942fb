namespace Jobs.Core.Functions;

/// <summary>
/// Marks a method as a function that jobs can run. <paramref name="name"/> is the stable public name that
/// clients send and queued jobs store, so renaming the method or its class never breaks queued work.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class JobFunctionAttribute(string name) : Attribute
{
    public string Name { get; } = name;

    public string Description { get; init; } = "";

    /// <summary>Default timeout in seconds for jobs that give no timeoutSeconds; 0 means none.</summary>
    public double TimeoutSeconds { get; init; }

    /// <summary>Registered only when <c>Jobs:EnableDebugCrash</c> is true (functions that harm the worker).</summary>
    public bool DebugOnly { get; init; }
}
