using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;

namespace Jobs.Api.Security;

internal static class SecuritySetup
{
    public const string ReadPolicy = "read";
    public const string WritePolicy = "write";

    /// <summary>
    /// With Auth:ApiKeys configured, every /jobs, /maps, /schedules, /pool and /functions call needs a key (GET:
    /// any key, anything else: an admin key) and so does the dashboard. With none, everything is open and the API
    /// listens on loopback only (see <see cref="ApiHostExtensions"/>).
    /// </summary>
    public static IServiceCollection AddJobsSecurity(this IServiceCollection services)
    {
        services.AddValidatedOptions<AuthOptions>(AuthOptions.Section);
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(ReadPolicy, p => p.AddRequirements(new KeyRequirement(AuthOptions.ReadOnlyRole)))
            .AddPolicy(WritePolicy, p => p.AddRequirements(new KeyRequirement(AuthOptions.AdminRole)));
        services.AddSingleton<IAuthorizationHandler, KeyRequirementHandler>();
        return services;
    }

    /// <summary>GETs need any key, other methods an admin key (both pass when no keys are configured).</summary>
    public static TBuilder RequireApiKey<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        builder.Add(endpoint =>
        {
            var methods = endpoint.Metadata.OfType<Microsoft.AspNetCore.Routing.HttpMethodMetadata>().FirstOrDefault()?.HttpMethods ?? [];
            var readOnly = methods.Count > 0 && methods.All(m => m is "GET" or "HEAD");
            endpoint.Metadata.Add(new AuthorizeAttribute(readOnly ? ReadPolicy : WritePolicy));
        });
        return builder;
    }

    private sealed record KeyRequirement(string MinimumRole) : IAuthorizationRequirement;

    /// <summary>Whether keys are required is the start-up configuration's (see ApiKeyAuthentication); which keys, the current one's.</summary>
    private sealed class KeyRequirementHandler(Microsoft.Extensions.Options.IOptions<AuthOptions> atStart) : AuthorizationHandler<KeyRequirement>
    {
        protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, KeyRequirement requirement)
        {
            var user = context.User;
            if (!atStart.Value.Enabled
                || (user.Identity?.IsAuthenticated == true
                    && (requirement.MinimumRole == AuthOptions.ReadOnlyRole || user.IsInRole(AuthOptions.AdminRole))))
                context.Succeed(requirement);
            return Task.CompletedTask;
        }
    }
}
