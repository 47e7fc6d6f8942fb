using System.Diagnostics.CodeAnalysis;

namespace Jobs.Core.Functions;

/// <summary>Every function this process knows, by public name, from all providers.</summary>
public sealed class FunctionRegistry
{
    private readonly Dictionary<string, JobFunction> _byName = new(StringComparer.Ordinal);

    public FunctionRegistry(IEnumerable<IFunctionProvider> providers)
    {
        foreach (var function in providers.SelectMany(p => p.GetFunctions()))
        {
            if (!_byName.TryAdd(function.Name, function))
                throw new InvalidOperationException($"Two functions are registered under the name '{function.Name}'. Function names must be unique.");
        }
    }

    public IEnumerable<JobFunction> All => _byName.Values.OrderBy(f => f.Name, StringComparer.Ordinal);

    public bool TryGet(string name, [NotNullWhen(true)] out JobFunction? function) => _byName.TryGetValue(name, out function);
}
