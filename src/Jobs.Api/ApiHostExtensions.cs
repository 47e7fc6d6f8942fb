using System.Net;
using System.Text.Json.Serialization;
using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Jobs.Api;

internal static class ApiHostExtensions
{
    /// <summary>
    /// Listening addresses and request limits from the "Api" section. Without API keys (Auth:ApiKeys) the API
    /// never listens beyond loopback, whatever Api:Urls says: an open job queue must not be reachable from outside.
    /// Kestrel can be told where to listen in other ways too (Kestrel:Endpoints, --urls): so without keys every
    /// endpoint also drops connections that do not come from loopback, and <see cref="LogSecurityPosture"/> checks
    /// the addresses actually bound and stops the service if one is not loopback.
    /// </summary>
    public static WebApplicationBuilder ConfigureApiHost(this WebApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<ApiOptions>(ApiOptions.Section);
        var api = builder.Configuration.Read<ApiOptions>(ApiOptions.Section);
        var auth = builder.Configuration.Read<AuthOptions>(AuthOptions.Section);
        var maxJsonDepth = JobsOptions.ConfiguredMaxJsonDepth(builder.Configuration);
        var urls = api.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => auth.Enabled ? u : LoopbackOnly(u)).Distinct().ToArray();
        builder.WebHost.UseUrls(urls);
        builder.Services.Configure<Microsoft.AspNetCore.Builder.ForwardedHeadersOptions>(forwarded =>
        {
            forwarded.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto;
            // Only the listed proxies: the defaults trust all of 127.0.0.0/8, so any local process could name any client.
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var proxy in api.TrustedProxies) forwarded.KnownProxies.Add(IPAddress.Parse(proxy)); // validated in ApiOptions
        });
        builder.Services.Configure<KestrelServerOptions>(k =>
        {
            k.Limits.MaxRequestBodySize = api.MaxRequestBodyBytes;
            if (!auth.Enabled) k.ConfigureEndpointDefaults(listen => listen.Use(next => connection =>
            {
                if (connection.RemoteEndPoint is IPEndPoint remote && !IPAddress.IsLoopback(remote.Address))
                {
                    connection.Abort();
                    return Task.CompletedTask;
                }
                return next(connection);
            }));
        });
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            // A stored value (arguments, kwargs, a map item) nests at most Jobs:MaxJsonDepth deep, checked where it is
            // accepted (SubmissionRules.Depth); the body around it adds up to three levels ({"jobs": [{"args": …}]}).
            // Stored values are written back raw (RawJson), so no response depends on this limit.
            json.SerializerOptions.MaxDepth = maxJsonDepth + BodyDepthAroundValues;
            // A number in the contract is a JSON number: not "5", not "NaN" (the web defaults read numbers from strings).
            json.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });
        return builder;
    }

    /// <summary>How much deeper than a stored value a request body may nest: POST /jobs/batch's object, its jobs array, and a job.</summary>
    public const int BodyDepthAroundValues = 3;

    /// <summary>The client's own address behind an Api:TrustedProxies proxy (X-Forwarded-For), for limits and logs.</summary>
    public static WebApplication UseJobsForwardedHeaders(this WebApplication app)
    {
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ApiOptions>>().Value.TrustedProxies.Length > 0) app.UseForwardedHeaders();
        return app;
    }

    /// <summary>
    /// Says at start-up who can reach the API, from the addresses Kestrel actually bound. Without keys, an address
    /// beyond loopback (set through Kestrel:Endpoints, say) stops the service: it would be an open job queue.
    /// </summary>
    public static WebApplication LogSecurityPosture(this WebApplication app)
    {
        var auth = app.Configuration.Read<AuthOptions>(AuthOptions.Section);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Jobs.Api.Security");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
            if (auth.Enabled)
            {
                logger.LogInformation("API keys configured ({Count}); the API and the dashboard require one", auth.ApiKeys.Length);
                return;
            }
            if (bound.FirstOrDefault(a => !IsLoopback(a)) is { } open)
            {
                logger.LogCritical("Stopping: no API keys are configured (Auth:ApiKeys), yet the API was bound to {Address}, beyond loopback " +
                                   "(Kestrel:Endpoints or --urls). Configure API keys, or listen on 127.0.0.1", open);
                Environment.ExitCode = 3;
                app.Lifetime.StopApplication();
                return;
            }
            logger.LogWarning("No API keys configured (Auth:ApiKeys): anyone on this machine can use the API and dashboard, " +
                              "so they listen on loopback only ({Urls})", string.Join(", ", bound));
        });
        return app;
    }

    /// <summary>An address Kestrel reports as bound ("http://127.0.0.1:5080", "http://[::]:80", "http://localhost:5000").</summary>
    private static bool IsLoopback(string address)
    {
        if (!Uri.TryCreate(address.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal),
                UriKind.Absolute, out var uri)) return false;
        return uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
    }

    private static string LoopbackOnly(string url)
    {
        var uri = new UriBuilder(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
        if (uri.Host is "localhost" or "127.0.0.1" or "[::1]" or "::1") return url;
        uri.Host = "127.0.0.1";
        return uri.Uri.ToString().TrimEnd('/');
    }
}
