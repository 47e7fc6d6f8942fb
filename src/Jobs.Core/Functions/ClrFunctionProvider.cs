using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using Jobs.Core.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Functions;

/// <summary>
/// Finds methods marked <see cref="JobFunctionAttribute"/> in the given assemblies. Static methods are called
/// directly; instance methods on a class created through DI, so functions can take services.
/// </summary>
public sealed class ClrFunctionProvider(IEnumerable<Assembly> assemblies, IServiceProvider services, IOptions<JobsOptions> options)
    : IFunctionProvider
{
    public IEnumerable<JobFunction> GetFunctions() =>
        from assembly in assemblies.Distinct()
        from type in assembly.GetExportedTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
        let attribute = method.GetCustomAttribute<JobFunctionAttribute>()
        where attribute is not null && (!attribute.DebugOnly || options.Value.EnableDebugCrash)
        select new ClrJobFunction(attribute, method, services);
}

/// <summary>A .NET method as a <see cref="JobFunction"/>: Python-style binding of JSON arguments to its parameters.</summary>
public sealed class ClrJobFunction : JobFunction
{
    /// <summary>Strict JSON: no numbers from strings, nullability annotations respected, camelCase results.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General)
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
        // Results deeper than the serializer's default of 64 reach StoredValueLimits, which fails them naming Jobs:MaxJsonDepth.
        MaxDepth = 1024,
    };

    private static readonly JsonSchemaExporterOptions SchemaOptions = new() { TreatNullObliviousAsNonNullable = true };

    private readonly MethodInfo _method;
    private readonly IServiceProvider _services;
    private readonly ParameterInfo[] _all;
    private readonly ParameterInfo[] _bindable;

    /// <summary>Whether each bindable parameter takes null: read once here (NullabilityInfoContext is not thread-safe; binding runs per request).</summary>
    private readonly bool[] _allowsNull;

    public ClrJobFunction(JobFunctionAttribute attribute, MethodInfo method, IServiceProvider services)
    {
        _method = method;
        _services = services;
        _all = method.GetParameters();
        _bindable = _all.Where(p => !IsInjected(p.ParameterType)).ToArray();
        var nullability = new NullabilityInfoContext();
        _allowsNull = _bindable.Select(p => AllowsNull(p, nullability)).ToArray();
        Name = attribute.Name;
        Description = attribute.Description;
        Parameters = _bindable.Select((p, i) => new FunctionParameter(
            p.Name!,
            SchemaFor(p.ParameterType, _allowsNull[i]),
            Required: !p.HasDefaultValue,
            Default: p.HasDefaultValue ? JsonSerializer.SerializeToNode(p.DefaultValue, p.ParameterType, Json) : null)).ToArray();
        Returns = SchemaFor(ResultType(method.ReturnType), allowsNull: false);
        DefaultTimeoutSeconds = attribute.TimeoutSeconds > 0 ? attribute.TimeoutSeconds : null;
    }

    public override double? DefaultTimeoutSeconds { get; }

    public override string Name { get; }
    public override string Description { get; }
    public override IReadOnlyList<FunctionParameter> Parameters { get; }
    public override JsonNode Returns { get; }

    protected override void Bind(JsonElement args, JsonElement kwargs) => BindArguments(args, kwargs);

    public override async Task<JsonNode?> InvokeAsync(JsonElement args, JsonElement kwargs, JobContext context, CancellationToken ct)
    {
        var bound = BindArguments(args, kwargs);
        var values = new object?[_all.Length];
        for (int i = 0, b = 0; i < _all.Length; i++)
        {
            var type = _all[i].ParameterType;
            values[i] = type == typeof(CancellationToken) ? ct
                : type == typeof(JobContext) ? context
                : bound[b++];
        }
        var target = _method.IsStatic ? null : ActivatorUtilities.GetServiceOrCreateInstance(_services, _method.DeclaringType!);
        // DoNotWrapExceptions: the caller sees the function's own exception and stack trace, not a TargetInvocationException.
        var returned = _method.Invoke(target, BindingFlags.DoNotWrapExceptions, binder: null, values, culture: null);
        var (value, type2) = await UnwrapAsync(returned, _method.ReturnType);
        if (type2 == typeof(void)) return null;
        try
        {
            return JsonSerializer.SerializeToNode(value, type2, Json);
        }
        catch (ArgumentException e)
        {
            // NaN and ±Infinity, which JSON has no numbers for.
            throw new MaybeEncodingError($"Error sending result '{value}': {e.Message}");
        }
    }

    /// <summary>Python's rules: positionals fill parameters in order, keywords by name, defaults fill the rest.</summary>
    private object?[] BindArguments(JsonElement args, JsonElement kwargs)
    {
        if (args.ValueKind is not (JsonValueKind.Array or JsonValueKind.Undefined or JsonValueKind.Null))
            throw new ArgumentBindingException("args", $"args must be a JSON array of positional arguments, not {Describe(args.ValueKind)}.");
        if (kwargs.ValueKind is not (JsonValueKind.Object or JsonValueKind.Undefined or JsonValueKind.Null))
            throw new ArgumentBindingException("kwargs", $"kwargs must be a JSON object of keyword arguments, not {Describe(kwargs.ValueKind)}.");

        var given = new JsonElement?[_bindable.Length];
        if (args.ValueKind == JsonValueKind.Array)
        {
            var count = args.GetArrayLength();
            if (count > _bindable.Length)
                throw new ArgumentBindingException("args",
                    $"{Name}() takes {_bindable.Length} positional argument{(_bindable.Length == 1 ? "" : "s")} but {count} were given.");
            var i = 0;
            foreach (var item in args.EnumerateArray()) given[i++] = item;
        }
        if (kwargs.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in kwargs.EnumerateObject())
            {
                var index = Array.FindIndex(_bindable, p => p.Name == property.Name);
                if (index < 0)
                    throw new ArgumentBindingException(property.Name, $"{Name}() got an unexpected keyword argument '{property.Name}'.");
                if (given[index] is not null)
                    throw new ArgumentBindingException(property.Name, $"{Name}() got multiple values for argument '{property.Name}'.");
                given[index] = property.Value;
            }
        }

        var values = new object?[_bindable.Length];
        for (var i = 0; i < _bindable.Length; i++)
        {
            var parameter = _bindable[i];
            if (given[i] is not { } element)
            {
                values[i] = parameter.HasDefaultValue ? parameter.DefaultValue
                    : throw new ArgumentBindingException(parameter.Name!, $"{Name}() is missing required argument '{parameter.Name}'.");
                continue;
            }
            if (element.ValueKind == JsonValueKind.Null && !_allowsNull[i])
                throw new ArgumentBindingException(parameter.Name!, $"Argument '{parameter.Name}' of {Name}() must not be null; expected {TypeWord(parameter.ParameterType)}.");
            try
            {
                values[i] = element.Deserialize(parameter.ParameterType, Json);
            }
            catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or FormatException or OverflowException)
            {
                throw new ArgumentBindingException(parameter.Name!,
                    $"Argument '{parameter.Name}' of {Name}() must be {TypeWord(parameter.ParameterType)}; got {Describe(element)}.");
            }
        }
        return values;
    }

    private static bool IsInjected(Type type) => type == typeof(CancellationToken) || type == typeof(JobContext);

    private static bool AllowsNull(ParameterInfo p, NullabilityInfoContext nullability) =>
        Nullable.GetUnderlyingType(p.ParameterType) is not null
        || (!p.ParameterType.IsValueType && nullability.Create(p).WriteState == NullabilityState.Nullable);

    private static JsonNode SchemaFor(Type type, bool allowsNull)
    {
        if (type == typeof(void)) return new JsonObject { ["type"] = "null" };
        var schema = Json.GetJsonSchemaAsNode(type, SchemaOptions);
        if (allowsNull && schema is JsonObject o && o["type"] is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            o["type"] = new JsonArray(v.GetValue<string>(), "null");
        return schema;
    }

    private static Type ResultType(Type returnType) =>
        returnType == typeof(Task) || returnType == typeof(ValueTask) ? typeof(void)
        : returnType.IsGenericType && (returnType.GetGenericTypeDefinition() == typeof(Task<>) || returnType.GetGenericTypeDefinition() == typeof(ValueTask<>))
            ? returnType.GetGenericArguments()[0]
            : returnType;

    private static async Task<(object? Value, Type Type)> UnwrapAsync(object? returned, Type declared)
    {
        switch (returned)
        {
            case Task task:
                await task.ConfigureAwait(false);
                var resultType = ResultType(declared);
                return (resultType == typeof(void) ? null : task.GetType().GetProperty("Result")!.GetValue(task), resultType);
            case ValueTask valueTask:
                await valueTask.ConfigureAwait(false);
                return (null, typeof(void));
            default:
                if (declared.IsGenericType && declared.GetGenericTypeDefinition() == typeof(ValueTask<>))
                {
                    var asTask = (Task)declared.GetMethod(nameof(ValueTask<int>.AsTask))!.Invoke(returned, null)!;
                    await asTask.ConfigureAwait(false);
                    return (asTask.GetType().GetProperty("Result")!.GetValue(asTask), declared.GetGenericArguments()[0]);
                }
                return (returned, declared);
        }
    }

    private static string TypeWord(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return Type.GetTypeCode(type) switch
        {
            TypeCode.Int16 or TypeCode.Int32 or TypeCode.Int64 or TypeCode.UInt16 or TypeCode.UInt32 or TypeCode.UInt64
                or TypeCode.Byte or TypeCode.SByte => $"an integer ({type.Name})",
            TypeCode.Double or TypeCode.Single or TypeCode.Decimal => "a number",
            TypeCode.String => "a string",
            TypeCode.Boolean => "a boolean",
            _ when type.IsArray || typeof(System.Collections.IEnumerable).IsAssignableFrom(type) => "an array",
            _ => "an object",
        };
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private static string Describe(JsonElement element)
    {
        var text = element.GetRawText();
        return text.Length <= 40 ? $"{Describe(element.ValueKind)} ({text})" : Describe(element.ValueKind);
    }
}
