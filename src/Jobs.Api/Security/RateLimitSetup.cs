using System.Globalization;
using System.Threading.RateLimiting;
using Jobs.Core.Configuration;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Security;

internal static class RateLimitSetup
{
    /// <summary>
    /// A token bucket per API key (per client address for requests without a valid key, refused ones included):
    /// Api:RateLimitPerSecond, bursts up to Api:RateLimitBurst, for every route but /health (the dashboard, /metrics
    /// and Swagger count too). Over the limit: 429 problem+json with Retry-After. Failed authentication has a much
    /// tighter limit of its own (<see cref="FailedAuthentication"/>).
    /// </summary>
    public static IServiceCollection AddJobsRateLimiting(this IServiceCollection services)
    {
        services.AddSingleton<FailedAuthentication>();
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                if (http.Request.Path.StartsWithSegments("/health")) return RateLimitPartition.GetNoLimiter("health");
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
            limiter.OnRejected = (context, _) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                return TooManyRequestsAsync(context.HttpContext, retryAfter,
                    "This key (or address) is over its rate limit (Api:RateLimitPerSecond).");
            };
        });
        return services;
    }

    /// <summary>429 problem+json with Retry-After.</summary>
    public static ValueTask TooManyRequestsAsync(HttpContext http, TimeSpan retryAfter, string why)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests", Detail = $"{why} Retry after {seconds} s." },
        });
    }
}

/// <summary>
/// Key guessing is throttled per client address: each refused key takes a token from the address's bucket
/// (Auth:MaxFailedAttemptsPerMinute, refilled evenly over the minute). With the bucket empty, every key that
/// address presents is refused with 429 before it is checked, the right one too — otherwise a guesser would
/// simply go on until a guess succeeded.
/// </summary>
internal sealed class FailedAuthentication(IOptionsMonitor<AuthOptions> auth) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(address =>
        RateLimitPartition.GetTokenBucketLimiter(address, _ =>
        {
            var perMinute = auth.CurrentValue.MaxFailedAttemptsPerMinute;
            return new TokenBucketRateLimiterOptions
            {
                TokenLimit = perMinute,
                TokensPerPeriod = 1,
                ReplenishmentPeriod = TimeSpan.FromMinutes(1) / perMinute,
                QueueLimit = 0,
                AutoReplenishment = true,
            };
        }));

    /// <summary>How long the address must wait before it may present a key again; null when it may now.</summary>
    public TimeSpan? Blocked(string address) =>
        _limiter.GetStatistics(address) is { CurrentAvailablePermits: <= 0 } ? TimeSpan.FromMinutes(1) / auth.CurrentValue.MaxFailedAttemptsPerMinute : null;

    public void Failed(string address)
    {
        using var _ = _limiter.AttemptAcquire(address);
    }

    public void Dispose() => _limiter.Dispose();
}
