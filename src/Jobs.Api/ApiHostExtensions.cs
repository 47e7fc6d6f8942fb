using System.Text.Json.Serialization;
using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Jobs.Api;

public static class ApiHostExtensions
{
    /// <summary>
    /// Listening addresses and request limits from the "Api" section. Without API keys (Auth:ApiKeys) the API
    /// never listens beyond loopback, whatever Api:Urls says: an open job queue must not be reachable from outside.
    /// </summary>
    public static WebApplicationBuilder AddJobsApiHost(this WebApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<ApiOptions>(ApiOptions.Section);
        var api = JobsConfiguration.Validate(builder.Configuration.GetSection(ApiOptions.Section).Get<ApiOptions>() ?? new ApiOptions(), ApiOptions.Section);
        var auth = builder.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        var urls = api.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => auth.Enabled ? u : LoopbackOnly(u)).Distinct().ToArray();
        builder.WebHost.UseUrls(urls);
        builder.Services.Configure<KestrelServerOptions>(k => k.Limits.MaxRequestBodySize = api.MaxRequestBodyBytes);
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.MaxDepth = api.MaxJsonDepth;
            // A number in the contract is a JSON number: not "5", not "NaN" (the web defaults read numbers from strings).
            json.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });
        return builder;
    }

    /// <summary>Says at start-up who can reach the API.</summary>
    public static WebApplication LogSecurityPosture(this WebApplication app)
    {
        var auth = app.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Jobs.Api.Security");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            if (auth.Enabled)
                logger.LogInformation("API keys configured ({Count}); the API and the dashboard require one", auth.ApiKeys.Length);
            else
                logger.LogWarning("No API keys configured (Auth:ApiKeys): anyone on this machine can use the API and dashboard, " +
                                  "so they listen on loopback only ({Urls})", string.Join(", ", app.Urls));
        });
        return app;
    }

    private static string LoopbackOnly(string url)
    {
        var uri = new UriBuilder(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
        if (uri.Host is "localhost" or "127.0.0.1" or "[::1]" or "::1") return url;
        uri.Host = "127.0.0.1";
        return uri.Uri.ToString().TrimEnd('/');
    }
}
