using System.Diagnostics.CodeAnalysis;

namespace Jobs.Core.Functions;

/// <summary>Every function this process knows, by public name, from all providers.</summary>
public sealed class FunctionRegistry
{
    private readonly Dictionary<string, JobFunction> _byName = new(StringComparer.Ordinal);

    private readonly IOfferedFunctions? _offered;
    private readonly IReadOnlyList<IChangingFunctions> _changing;

    /// <param name="providers">Functions fixed for the life of the process (the .NET ones).</param>
    /// <param name="changing">This process's own functions that change while it runs (a worker's Python modules, reloaded when their files change).</param>
    /// <param name="offered">In the API: functions live workers offer (Python modules) besides the .NET ones.</param>
    public FunctionRegistry(IEnumerable<IFunctionProvider> providers, IEnumerable<IChangingFunctions>? changing = null, IOfferedFunctions? offered = null)
    {
        _offered = offered;
        _changing = [.. changing ?? []];
        foreach (var function in providers.SelectMany(p => p.GetFunctions()))
        {
            if (!_byName.TryAdd(function.Name, function))
                throw new InvalidOperationException($"Two functions are registered under the name '{function.Name}'. Function names must be unique.");
        }
    }

    public IEnumerable<JobFunction> All => Local
        .Concat(_offered?.Current.Values.Where(f => !_byName.ContainsKey(f.Name)) ?? [])
        .DistinctBy(f => f.Name, StringComparer.Ordinal)
        .OrderBy(f => f.Name, StringComparer.Ordinal);

    public bool TryGet(string name, [NotNullWhen(true)] out JobFunction? function)
    {
        if (_byName.TryGetValue(name, out function)) return true;
        foreach (var source in _changing)
            if (source.Current.TryGetValue(name, out function)) return true;
        return _offered is not null && _offered.Current.TryGetValue(name, out function);
    }

    /// <summary>
    /// <see cref="TryGet"/>, and on a miss the offers read again first: a function a worker has just offered is known
    /// to a submission at once, not after the next background read (which left a second in which a live worker's
    /// function was "unknown"). Null when no such function exists; <see cref="FunctionOffersUnavailableException"/> when
    /// that cannot be told — the offers could not be read (PostgreSQL away or cut off), and a function live workers
    /// offer must not be called unknown for it (an API restarted during a partition answered 404 for them).
    /// </summary>
    public async ValueTask<JobFunction?> FindAsync(string name, CancellationToken ct)
    {
        if (TryGet(name, out var function)) return function;
        if (_offered is null) return null;
        var current = await _offered.RefreshNowAsync(ct);
        if (TryGet(name, out function)) return function;
        return current ? null : throw new FunctionOffersUnavailableException(name);
    }

    /// <summary>The functions of this process's own providers (what a worker advertises), as they are now.</summary>
    public IEnumerable<JobFunction> Local => _byName.Values.Concat(_changing.SelectMany(s => s.Current.Values.Where(f => !_byName.ContainsKey(f.Name))));
}

/// <summary>Functions this process cannot run itself but live workers offer (in the API: Python modules).</summary>
public interface IOfferedFunctions
{
    IReadOnlyDictionary<string, JobFunction> Current { get; }

    /// <summary>
    /// Reads the offers again now (one read at a time, shared by every caller meanwhile); false when neither it nor any
    /// read of the last few seconds succeeded, so <see cref="Current"/> may lack what workers offer.
    /// </summary>
    Task<bool> RefreshNowAsync(CancellationToken ct);
}

/// <summary>Whether a function named so exists cannot be told now: the functions workers offer could not be read.</summary>
public sealed class FunctionOffersUnavailableException(string name)
    : Exception($"Whether a function named '{name}' exists cannot be told now: the functions workers offer could not be read from PostgreSQL.")
{
    public string Name { get; } = name;
}

/// <summary>Functions this process runs whose set or code changes while it runs (a worker's Python modules).</summary>
public interface IChangingFunctions
{
    /// <summary>The functions as they are now, by name.</summary>
    IReadOnlyDictionary<string, JobFunction> Current { get; }

    /// <summary>Completes the next time <see cref="Current"/> changes.</summary>
    Task Changed { get; }
}
