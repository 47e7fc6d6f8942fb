using System.Globalization;
using System.Threading.RateLimiting;
using Jobs.Core.Configuration;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Security;

public static class RateLimitSetup
{
    public const string Policy = "per-key";

    /// <summary>
    /// A token bucket per API key (per client address without keys): Api:RateLimitPerSecond, bursts up to
    /// Api:RateLimitBurst. Over the limit: 429 problem+json with Retry-After.
    /// </summary>
    public static IServiceCollection AddJobsRateLimiting(this IServiceCollection services)
    {
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(Policy, http =>
            {
                var api = http.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
                var partition = http.User.Identity?.IsAuthenticated == true
                    ? "key:" + http.User.Identity.Name
                    : "ip:" + http.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = api.RateLimitBurst,
                    TokensPerPeriod = api.RateLimitPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            limiter.OnRejected = async (context, ct) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
                context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
                await context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests",
                        Detail = $"This key (or address) is over its rate limit (Api:RateLimitPerSecond). Retry after {retryAfter} s.",
                    },
                });
            };
        });
        return services;
    }
}
