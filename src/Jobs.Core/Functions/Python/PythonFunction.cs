using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Core.Functions.Python;

/// <summary>
/// A public top-level function of a Python module, named <c>py:module.function</c>. Arguments bind as Python binds
/// them (positional, keyword, *args, keyword-only, **kwargs, defaults), with the JSON types its annotations give.
/// Built from the signature the python3 host describes (<c>jobs_host.py describe</c>); in the API, from the
/// definition a live worker advertised, where it validates but never runs.
/// </summary>
public sealed class PythonFunction : JobFunction
{
    private readonly JsonObject _definition;
    private readonly PythonProcessPool? _pool;
    private readonly string _function;
    private readonly string _module;

    /// <param name="module">The module's name (a function of Python:Imports names its own in <paramref name="definition"/>).</param>
    /// <param name="definition">What <c>jobs_host.py describe</c> said of the function.</param>
    /// <param name="pool">The processes that run it (in the worker); null in the API, which only validates.</param>
    /// <param name="poolSettings">The module's Pool settings as the workers run them: initializer, initargs, maxtasksperchild.</param>
    public PythonFunction(string module, JsonObject definition, PythonProcessPool? pool, JsonObject? poolSettings = null)
    {
        PoolSettings = poolSettings;
        _definition = definition;
        _pool = pool;
        // What the python3 host calls it by; the public name is pickle's: module and qualified name (a function of
        // Python:Imports says its own module: os.getpid is posix.getpid).
        _function = definition["name"]!.GetValue<string>();
        _module = definition["module"]?.GetValue<string>() ?? module;
        Name = $"py:{_module}.{definition["qualname"]?.GetValue<string>() ?? _function}";
        Description = definition["doc"]?.GetValue<string>() ?? "";
        Parameters = [.. Declared.Where(p => p.Kind is not ("VAR_POSITIONAL" or "VAR_KEYWORD"))
            .Select(p => new FunctionParameter(p.Name, p.Schema.DeepClone(), p.Required, p.Default?.DeepClone()))];
        Returns = definition["returns"]?.DeepClone() ?? new JsonObject();
    }

    public override string Name { get; }
    public override string Description { get; }
    public override IReadOnlyList<FunctionParameter> Parameters { get; }
    public override JsonNode Returns { get; }

    /// <summary>The module's Pool settings as its workers run them (<c>initializer</c>, <c>initargs</c>, <c>maxtasksperchild</c>).</summary>
    public JsonObject? PoolSettings { get; }

    /// <summary>What a worker advertises: the describe output of this function, with its public name and its module's Pool settings.</summary>
    public JsonObject Definition => new()
    {
        ["name"] = Name, ["module"] = _module, ["function"] = _definition.DeepClone(), ["pool"] = PoolSettings?.DeepClone(),
    };

    /// <summary>The Pool settings of <paramref name="module"/> as a worker runs it.</summary>
    public static JsonObject SettingsOf(PythonModuleOptions module) => new()
    {
        ["initializer"] = module.Initializer,
        ["initargs"] = JsonNode.Parse(module.InitArgs),
        ["maxtasksperchild"] = module.MaxTasksPerChild > 0 ? module.MaxTasksPerChild : null,
    };

    private sealed record Declared1(string Name, string Kind, JsonNode Schema, bool Required, JsonNode? Default);

    private IEnumerable<Declared1> Declared => _definition["parameters"]!.AsArray().Select(p => new Declared1(
        p!["name"]!.GetValue<string>(), p["kind"]!.GetValue<string>(), p["schema"] ?? new JsonObject(),
        p["required"]!.GetValue<bool>(), p["default"]));

    protected override void Bind(JsonElement args, JsonElement kwargs)
    {
        var declared = Declared.ToList();
        var positional = args.ValueKind == JsonValueKind.Array ? args.EnumerateArray().ToList() : [];
        var named = kwargs.ValueKind == JsonValueKind.Object ? kwargs.EnumerateObject().ToDictionary(p => p.Name, p => p.Value) : [];
        var bound = new HashSet<string>();
        var slots = declared.Where(p => p.Kind is "POSITIONAL_ONLY" or "POSITIONAL_OR_KEYWORD").ToList();
        for (var i = 0; i < positional.Count; i++)
        {
            if (i < slots.Count)
            {
                Check(slots[i], positional[i]);
                bound.Add(slots[i].Name);
            }
            else if (!declared.Any(p => p.Kind == "VAR_POSITIONAL"))
                throw new ArgumentBindingException("args", $"{Name}() takes {slots.Count} positional argument(s) but {positional.Count} were given.");
        }
        foreach (var (name, value) in named)
        {
            var parameter = declared.FirstOrDefault(p => p.Name == name && p.Kind is "POSITIONAL_OR_KEYWORD" or "KEYWORD_ONLY");
            if (parameter is null)
            {
                if (declared.Any(p => p.Kind == "VAR_KEYWORD")) continue;
                throw new ArgumentBindingException(name, $"{Name}() got an unexpected keyword argument '{name}'.");
            }
            if (!bound.Add(name)) throw new ArgumentBindingException(name, $"{Name}() got multiple values for argument '{name}'.");
            Check(parameter, value);
        }
        foreach (var missing in declared.Where(p => p.Required && p.Kind is not ("VAR_POSITIONAL" or "VAR_KEYWORD") && !bound.Contains(p.Name)))
            throw new ArgumentBindingException(missing.Name, $"{Name}() missing required argument '{missing.Name}'.");
    }

    /// <summary>
    /// A hint is checked for the kind of JSON value only, as loosely as Python runs it (Python does not enforce hints):
    /// <c>int</c> and <c>float</c> take any number or a boolean (bool is an int), <c>str</c> a string, <c>bool</c> a
    /// boolean, <c>list</c> an array, <c>dict</c> an object; a parameter defaulting to None also takes null.
    /// </summary>
    private void Check(Declared1 parameter, JsonElement value)
    {
        var type = parameter.Schema["type"]?.GetValue<string>();
        if (value.ValueKind == JsonValueKind.Null && parameter.Schema["nullable"]?.GetValue<bool>() == true) return;
        var ok = type switch
        {
            null => true,
            "integer" or "number" => value.ValueKind is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False,
            "string" => value.ValueKind == JsonValueKind.String,
            "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "array" => value.ValueKind == JsonValueKind.Array,
            "object" => value.ValueKind == JsonValueKind.Object,
            "null" => value.ValueKind == JsonValueKind.Null,
            _ => true,
        };
        if (!ok)
            throw new ArgumentBindingException(parameter.Name,
                $"Argument '{parameter.Name}' of {Name}() must be {(type is "integer" or "array" or "object" ? "an " : "a ")}{type}; got {value.GetRawText()}.");
    }

    public override Task<JsonNode?> InvokeAsync(JsonElement args, JsonElement kwargs, JobContext context, CancellationToken ct) =>
        _pool is null
            ? throw new InvalidOperationException($"{Name} runs in the workers that offer it, not here.")
            : _pool.CallAsync(_function, args, kwargs, context, ct);
}
