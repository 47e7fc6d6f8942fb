using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Jobs.Api.SingleJobs;
using Jobs.Api.Problems;
using Jobs.Api.Security;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Jobs.Api.OpenApi;

/// <summary>
/// What generated clients rely on (issue 22), added to the schemas Swashbuckle generates from the contracts: which
/// members are always present (<c>required</c>), which may be null, the values a state takes, and "any JSON value"
/// for stored values (<see cref="RawJson"/>, <see cref="JsonElement"/>, <see cref="JsonNode"/>).
/// </summary>
internal sealed class ContractSchemaFilter : ISchemaFilter
{
    private static readonly NullabilityInfoContext Nullability = new();

    /// <summary>The states a map takes (migrations/0003_create_maps.sql).</summary>
    public static readonly IReadOnlyList<string> MapStates = ["enqueued", "processing", "succeeded", "failed", "canceled"];

    /// <summary>The members every problem answer of the API has (<see cref="ApiProblems"/>, ASP.NET Core's problem details service).</summary>
    private static readonly HashSet<string> ProblemMembers = ["title", "status", "exceptionType", "message", "stackTrace"];

    public static bool IsAnyValue(Type type) =>
        (Nullable.GetUnderlyingType(type) ?? type) is var t && (t == typeof(RawJson) || t == typeof(JsonElement) || typeof(JsonNode).IsAssignableFrom(t));

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is not OpenApiSchema target || target.Properties is null || context.Type is not { IsClass: true } type) return;
        // Request bodies refuse unknown members and leave most out; everything the API writes has every member.
        var written = type.GetCustomAttribute<JsonUnmappedMemberHandlingAttribute>() is null && !typeof(Problem).IsAssignableFrom(type);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            if (!target.Properties.ContainsKey(name)) continue;
            var omittedWhenNull = property.GetCustomAttribute<JsonIgnoreAttribute>()?.Condition == JsonIgnoreCondition.WhenWritingNull;
            if (IsAnyValue(property.PropertyType))
            {
                var nullable = Nullable.GetUnderlyingType(property.PropertyType) is not null
                               || Nullability.Create(property).ReadState == NullabilityState.Nullable;
                // "Any JSON value": no type, which (OpenAPI 3.0.4) takes null too. Where the member may be null, it says so
                // as well: generators (NSwag) read a typeless schema without nullable as "never null". Written as
                // an extension since the model writes nullable only beside a type (tests/openapi/redocly.yaml).
                var any = new OpenApiSchema { Description = target.Properties[name].Description };
                if (nullable) any.Extensions = new Dictionary<string, IOpenApiExtension> { ["nullable"] = new JsonNodeExtension(true) };
                target.Properties[name] = any;
            }
            // A request member the API refuses a body without ([Required]: the API checks it itself) is required and never null.
            var requested = !written && property.GetCustomAttribute<System.ComponentModel.DataAnnotations.RequiredAttribute>() is not null;
            if (requested && target.Properties[name] is OpenApiSchema member) member.Type &= ~JsonSchemaType.Null;
            if ((written && !omittedWhenNull) || requested || ProblemMembers.Contains(name) && typeof(Problem).IsAssignableFrom(type))
            {
                target.Required ??= new HashSet<string>();
                target.Required.Add(name);
            }
        }
        // A problem carries extensions beyond its typed members (traceId, jobId, errors …).
        if (typeof(Problem).IsAssignableFrom(type)) target.AdditionalPropertiesAllowed = true;
        if (type == typeof(JobView))
        {
            Enumerate(target, "state", JobStates.All);
            // A stored error always has one shape (ErrorJson): what the function raised, typed, null until it fails.
            target.Properties["error"] = new OpenApiSchema
            {
                Description = "What the last attempt raised (or why the job was canceled); null if it has not failed.",
                AllOf = [context.SchemaGenerator.GenerateSchema(typeof(Maps.RemoteException), context.SchemaRepository)],
                Extensions = new Dictionary<string, IOpenApiExtension> { ["nullable"] = new JsonNodeExtension(true) },
            };
            target.Examples = [JsonNode.Parse(JobViewExample)!];
        }
        if (type == typeof(RemoteErrorProblem)) target.Examples = [JsonNode.Parse(RemoteErrorExample)!];
        if (type == typeof(JobResult)) target.Examples = [JsonNode.Parse("""{ "ready": true, "result": 49 }""")!];
        if (type == typeof(Maps.MapView))
        {
            Enumerate(target, "state", MapStates);
            target.Examples = [JsonNode.Parse(MapViewExample)!];
        }
    }

    private const string JobViewExample = """
        { "id": "0193a5c2-7d41-7e8a-9b1f-3c2d4e5f6a7b", "function": "math.square", "args": [7], "kwargs": {}, "queue": "default",
          "state": "succeeded", "ready": true, "successful": true, "result": 49, "error": null, "attempts": 1, "progress": null,
          "createdAt": "2026-01-05T10:00:00Z", "startedAt": "2026-01-05T10:00:00.012Z", "finishedAt": "2026-01-05T10:00:00.015Z",
          "runAt": null, "timeoutSeconds": 60, "retries": 2, "callbackUrl": null, "callback": null }
        """;

    private const string RemoteErrorExample = """
        { "title": "The job failed", "status": 424, "detail": "debug.fail raised Jobs.Core.Functions.BuiltIn.DebugFailureException: nope",
          "exceptionType": "Jobs.Core.Functions.BuiltIn.DebugFailureException", "message": "nope",
          "stackTrace": "   at Jobs.Core.Functions.BuiltIn.DebugFunctions.Fail(String message)",
          "jobId": "0193a5c2-7d41-7e8a-9b1f-3c2d4e5f6a7b", "mapId": null, "index": null }
        """;

    private const string MapViewExample = """
        { "id": "0193a5c2-8e52-7f9b-8c2a-4d3e5f6a7b8c", "function": "primes.count", "queue": "default", "state": "processing",
          "total": 3, "succeeded": 1, "failed": 0, "canceled": 0, "pending": 2, "ready": false, "successful": null,
          "chunks": 3, "chunksize": 1, "createdAt": "2026-01-05T10:00:00Z", "finishedAt": null }
        """;

    private static void Enumerate(OpenApiSchema schema, string property, IReadOnlyList<string> values)
    {
        if (schema.Properties![property] is OpenApiSchema member) member.Enum = values.Select(v => (JsonNode)JsonValue.Create(v)).ToList();
    }
}

/// <summary>
/// Per operation: the typed problem for each problem+json status, the 401/403/429 every keyed call may answer, its
/// security requirement, and the job states GET /jobs filters by.
/// </summary>
internal sealed class ContractOperationFilter : IOperationFilter
{
    public const string Bearer = "bearer";
    public const string Basic = "basic";
    private const string ProblemJson = "application/problem+json";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        operation.Responses ??= new OpenApiResponses();
        if (metadata.OfType<AuthorizeAttribute>().FirstOrDefault() is { } authorize)
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Bearer, context.Document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Basic, context.Document)] = [] },
            ];
            AddProblem(operation, "401", "No API key, or a wrong one (Auth:ApiKeys).");
            if (authorize.Policy == SecuritySetup.WritePolicy) AddProblem(operation, "403", "A read-only key: this call needs an admin key.");
        }
        AddProblem(operation, "429", "Too many requests from this caller: retry after Retry-After seconds.");

        foreach (var (status, response) in operation.Responses)
        {
            // When to ask again: a rate-limited call, and a result not ready yet.
            if (response is OpenApiResponse answer && (status == "429" || (status == "202" && context.ApiDescription.HttpMethod == "GET")))
            {
                answer.Headers ??= new Dictionary<string, IOpenApiHeader>();
                answer.Headers["Retry-After"] = new OpenApiHeader
                {
                    Description = "Seconds to wait before asking again.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer },
                };
            }
            if (response.Content?.TryGetValue(ProblemJson, out var media) != true || media is not OpenApiMediaType problem) continue;
            var type = status switch
            {
                "400" => typeof(Microsoft.AspNetCore.Http.HttpValidationProblemDetails),
                "404" => typeof(NotFoundProblem),
                "424" => typeof(RemoteErrorProblem),
                "429" => typeof(RateLimitProblem),
                _ => typeof(Problem),
            };
            problem.Schema = context.SchemaGenerator.GenerateSchema(type, context.SchemaRepository);
        }

        // A request body is the type itself, not allOf of it (UseAllOfToExtendReferenceSchemas is for nullable members).
        foreach (var media in operation.RequestBody?.Content?.Values.OfType<OpenApiMediaType>() ?? [])
            if (media.Schema is OpenApiSchema { AllOf: [var only] } wrapper && wrapper.Properties is null or { Count: 0 } && wrapper.Type is null)
                media.Schema = only;

        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
            if (parameter is { Name: "state", In: ParameterLocation.Query, Schema: OpenApiSchema schema } && context.ApiDescription.RelativePath?.TrimEnd('/') == "jobs")
                schema.Enum = JobStates.All.Select(v => (JsonNode)JsonValue.Create(v)).ToList();
    }

    private static void AddProblem(OpenApiOperation operation, string status, string description)
    {
        if (operation.Responses!.ContainsKey(status)) return;
        operation.Responses[status] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, IOpenApiMediaType> { [ProblemJson] = new OpenApiMediaType() },
        };
    }
}

/// <summary>The document's security schemes (the API keys), tag descriptions, and the server it was read from.</summary>
internal sealed class ContractDocumentFilter : IDocumentFilter
{
    private static readonly Dictionary<string, string> Tags = new()
    {
        ["Jobs"] = "apply_async, apply and AsyncResult: submit a function call, wait for it, read its result, cancel or retry it.",
        ["Maps"] = "map, starmap, imap and imap_unordered: one function over many items, results in input or completion order.",
        ["Functions"] = "The registered functions, with their parameters as JSON Schema.",
        ["Schedules"] = "Recurring jobs on a cron schedule.",
        ["Pool"] = "The worker processes, their slots and queues.",
        ["Queues"] = "Queues: depth, oldest waiting job, live workers; pause and resume.",
    };

    public void Apply(OpenApiDocument document, DocumentFilterContext context)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[ContractOperationFilter.Bearer] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An API key from Auth:ApiKeys as `Authorization: Bearer <key>`. GETs take any key, everything else an admin key. " +
                          "With no keys configured the API is open (and listens on loopback only).",
        };
        document.Components.SecuritySchemes[ContractOperationFilter.Basic] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "basic",
            Description = "The same API key as the password (any user name): what a browser sends for the dashboard at /hangfire.",
        };
        document.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ContractOperationFilter.Bearer, document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ContractOperationFilter.Basic, document)] = [] },
        ];
        foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
            if (tag.Name is { } name && Tags.TryGetValue(name, out var description)) tag.Description ??= description;
    }
}
