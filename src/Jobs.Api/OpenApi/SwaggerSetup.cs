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
            // A stored JSON value, written as stored: any JSON value, as the JsonElement it used to be.
            c.MapType<global::Jobs.Core.Jobs.RawJson>(() => new OpenApiSchema());
        });
        return services;
    }

    public static WebApplication MapJobsSwagger(this WebApplication app)
    {
        app.UseSwagger();
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
