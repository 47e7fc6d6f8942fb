using System.Text.Json.Nodes;
using Jobs.Api.Security;
using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Jobs.Api.Functions;

/// <summary>A registered function as clients see it: what to send in args/kwargs, as JSON Schema.</summary>
internal sealed record FunctionView(string Name, string Description, IReadOnlyList<ParameterView> Parameters, JsonNode Returns,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    double? TimeoutSeconds,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    JsonNode? Python)
{
    /// <param name="f">The function; a Python function also shows its module's Pool settings (<c>python</c>:
    /// initializer, initargs, maxtasksperchild as the workers run them), which jobs.Pool(initializer=…) checks.</param>
    public static FunctionView From(JobFunction f) => new(f.Name, f.Description,
        f.Parameters.Select(p => new ParameterView(p.Name, p.Schema, p.Required, p.Default)).ToList(), f.Returns, f.DefaultTimeoutSeconds,
        (f as PythonFunction)?.PoolSettings?.DeepClone());
}

internal sealed record ParameterView(
    string Name,
    JsonNode Schema,
    bool Required,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    JsonNode? Default);

/// <summary>/functions: what can be submitted.</summary>
internal static class FunctionsApi
{
    public static IEndpointRouteBuilder MapFunctionsApi(this IEndpointRouteBuilder app)
    {
        var functions = app.MapGroup("/functions").WithTags("Functions").RequireApiKey();

        functions.MapGet("/", (FunctionRegistry registry) => TypedResults.Ok(registry.All.Select(FunctionView.From).ToList()))
            .WithName("ListFunctions")
            .WithSummary("List the registered functions with their parameters as JSON Schema");

        functions.MapGet("/{name}", async Task<Results<Ok<FunctionView>, ProblemHttpResult>> (string name, FunctionRegistry registry, CancellationToken ct) =>
                await registry.FindAsync(name, ct) is { } function
                    ? TypedResults.Ok(FunctionView.From(function))
                    : TypedResults.Problem($"No function named '{name}' is registered. GET /functions lists the registered functions.",
                        statusCode: StatusCodes.Status404NotFound, title: "Unknown function"))
            .WithName("GetFunction")
            .WithSummary("Get one function's description and parameters")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable); // the functions workers offer could not be read

        return app;
    }
}
