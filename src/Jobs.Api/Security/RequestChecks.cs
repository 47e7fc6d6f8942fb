using Jobs.Core.Configuration;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Security;

/// <summary>Refusals that come before routing, for every endpoint alike.</summary>
internal static class RequestChecks
{
    private static readonly string[] LoopbackHosts = ["localhost", "127.0.0.1", "[::1]"];

    /// <summary>
    /// <list type="bullet">
    /// <item>U+0000 in the path or the query (<c>%00</c>) is 400: PostgreSQL refuses it in a parameter, and that refusal
    /// leaves Npgsql's auto-prepared statement on the pooled connection out of step, so a later request on it fails.</item>
    /// <item>Without API keys, only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]) are served
    /// (421 otherwise): a page whose host name an attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with
    /// the service in the victim's browser and could use the open API and dashboard. With keys, such a page has no key.</item>
    /// </list>
    /// </summary>
    public static WebApplication UseJobsRequestChecks(this WebApplication app)
    {
        var keys = app.Services.GetRequiredService<IOptions<AuthOptions>>().Value.Enabled;
        app.Use(async (http, next) =>
        {
            var request = http.Request;
            if (request.Path.Value?.Contains('\0', StringComparison.Ordinal) == true
                || request.Query.Any(q => q.Key.Contains('\0', StringComparison.Ordinal) || q.Value.Any(v => v?.Contains('\0', StringComparison.Ordinal) == true)))
                await RefuseAsync(http, StatusCodes.Status400BadRequest, "Invalid request",
                    "The path or query holds U+0000 (%00), which no id, name or filter can contain.");
            else if (!keys && !IsLoopbackName(request.Host.Host))
                await RefuseAsync(http, StatusCodes.Status421MisdirectedRequest, "Host not served",
                    "Without API keys (Auth:ApiKeys) this service answers only requests addressed to localhost, 127.0.0.1 or [::1].");
            else
                await next(http);
        });
        return app;
    }

    private static bool IsLoopbackName(string host) =>
        LoopbackHosts.Contains(host, StringComparer.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);

    /// <summary>A refusal as problem+json, written by middleware (endpoints return ApiProblems instead).</summary>
    public static Task RefuseAsync(HttpContext http, int status, string title, string detail)
    {
        http.Response.StatusCode = status;
        return http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        }).AsTask();
    }
}
