using System.Diagnostics.CodeAnalysis;

namespace Jobs.Core.Functions;

/// <summary>Every function this process knows, by public name, from all providers.</summary>
public sealed class FunctionRegistry
{
    private readonly Dictionary<string, JobFunction> _byName = new(StringComparer.Ordinal);

    private readonly IOfferedFunctions? _offered;

    /// <param name="offered">In the API: functions live workers offer (Python modules) besides the .NET ones.</param>
    public FunctionRegistry(IEnumerable<IFunctionProvider> providers, IOfferedFunctions? offered = null)
    {
        _offered = offered;
        foreach (var function in providers.SelectMany(p => p.GetFunctions()))
        {
            if (!_byName.TryAdd(function.Name, function))
                throw new InvalidOperationException($"Two functions are registered under the name '{function.Name}'. Function names must be unique.");
        }
    }

    public IEnumerable<JobFunction> All => _byName.Values
        .Concat(_offered?.Current.Values.Where(f => !_byName.ContainsKey(f.Name)) ?? [])
        .OrderBy(f => f.Name, StringComparer.Ordinal);

    public bool TryGet(string name, [NotNullWhen(true)] out JobFunction? function) =>
        _byName.TryGetValue(name, out function) || (_offered is not null && _offered.Current.TryGetValue(name, out function));

    /// <summary>The functions of this process's own providers (what a worker advertises).</summary>
    public IEnumerable<JobFunction> Local => _byName.Values;
}

/// <summary>Functions this process cannot run itself but live workers offer (in the API: Python modules).</summary>
public interface IOfferedFunctions
{
    IReadOnlyDictionary<string, JobFunction> Current { get; }
}
