using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Core.Functions;

/// <summary>One parameter as clients see it: JSON Schema, whether it must be given, and its default.</summary>
public sealed record FunctionParameter(string Name, JsonNode Schema, bool Required, JsonNode? Default);

/// <summary>
/// A registered function, whatever runs it: a .NET method today, a worker-managed python3 process later.
/// Every provider advertises the same shape (name, description, parameters as JSON Schema, return schema)
/// and binds <c>args</c>/<c>kwargs</c> the way Python does.
/// </summary>
public abstract class JobFunction
{
    public abstract string Name { get; }
    public abstract string Description { get; }
    public abstract IReadOnlyList<FunctionParameter> Parameters { get; }
    public abstract JsonNode Returns { get; }

    /// <summary>The timeout for jobs that give no timeoutSeconds; null: none.</summary>
    public virtual double? DefaultTimeoutSeconds => null;

    /// <summary>
    /// Checks that <paramref name="args"/> (a JSON array) and <paramref name="kwargs"/> (a JSON object) bind to
    /// the parameters; throws <see cref="ArgumentBindingException"/> naming the parameter when they don't.
    /// The API calls this before anything is stored, the worker again before it runs the function. A string that
    /// is not UTF-8 (JSON text must be; System.Text.Json reads it lazily) is refused here too, naming where it is.
    /// </summary>
    public void Validate(JsonElement args, JsonElement kwargs)
    {
        if ((JsonUtf8.FindInvalid(args, "args") ?? JsonUtf8.FindInvalid(kwargs, "kwargs")) is { } where)
            throw new ArgumentBindingException(where, JsonUtf8.Explain(where));
        Bind(args, kwargs);
    }

    /// <summary><see cref="Validate"/> once the JSON is known to be well formed.</summary>
    protected abstract void Bind(JsonElement args, JsonElement kwargs);

    /// <summary>Runs the function and returns its result as JSON.</summary>
    public abstract Task<JsonNode?> InvokeAsync(JsonElement args, JsonElement kwargs, JobContext context, CancellationToken ct);
}

/// <summary>Arguments that don't fit the function's parameters; <see cref="Parameter"/> names the culprit.</summary>
public sealed class ArgumentBindingException(string parameter, string message) : Exception(message)
{
    public string Parameter { get; } = parameter;
}

/// <summary>Supplies functions to the registry. One per kind of code (.NET assemblies, Python modules, …).</summary>
public interface IFunctionProvider
{
    IEnumerable<JobFunction> GetFunctions();
}
