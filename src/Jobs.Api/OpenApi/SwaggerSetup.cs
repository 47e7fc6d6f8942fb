using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Jobs.Api.OpenApi;

/// <summary>Swagger UI at /swagger over the OpenAPI document at /swagger/v1/swagger.json.</summary>
internal static class SwaggerSetup
{
    public static IServiceCollection AddJobsSwagger(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(c =>
        {
            c.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "Jobs",
                Version = "v1",
                Description = "A durable multiprocessing.Pool over HTTP: submit registered functions with arguments, " +
                              "workers run them in parallel, results come back through the API. Errors are " +
                              "application/problem+json (RFC 9457). The Hangfire dashboard is at /hangfire.",
            });
            c.OperationFilter<RequestExampleFilter>();
            // Stored JSON values (arguments, results, errors, parameter defaults): any JSON value, never the .NET types
            // that hold them (JsonNode's options/parent/root). ContractSchemaFilter says where they may be null.
            c.MapType<global::Jobs.Core.SingleJobs.RawJson>(() => new OpenApiSchema());
            c.MapType<JsonElement>(() => new OpenApiSchema());
            c.MapType<JsonNode>(() => new OpenApiSchema());
            // Nullability from the contracts' nullable annotations; a nullable reference is allOf-wrapped, so it says so.
            c.SupportNonNullableReferenceTypes();
            c.UseAllOfToExtendReferenceSchemas();
            c.SchemaFilter<ContractSchemaFilter>();
            c.OperationFilter<ContractOperationFilter>();
            c.DocumentFilter<ContractDocumentFilter>();
        });
        return services;
    }

    public static WebApplication MapJobsSwagger(this WebApplication app)
    {
        // The server is the one the document was read from (behind Api:TrustedProxies, the address the client used).
        app.UseSwagger(o => o.PreSerializeFilters.Add((document, request) =>
            document.Servers = [new OpenApiServer { Url = $"{request.Scheme}://{request.Host}{request.PathBase}", Description = "This Jobs API" }]));
        app.UseSwaggerUI(ui => ui.DocumentTitle = "Jobs API");
        return app;
    }

    /// <summary>Attaches an example request body to the endpoint's OpenAPI operation.</summary>
    public static RouteHandlerBuilder WithRequestExample(this RouteHandlerBuilder builder, string json) =>
        builder.WithMetadata(new RequestExample(json));

    private sealed record RequestExample(string Json);

    private sealed class RequestExampleFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            var example = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequestExample>().FirstOrDefault();
            if (example is null || operation.RequestBody?.Content is null) return;
            foreach (var media in operation.RequestBody.Content.Values.OfType<OpenApiMediaType>()) media.Example = JsonNode.Parse(example.Json);
        }
    }
}
