using System.ComponentModel.DataAnnotations;

namespace Jobs.Core.Configuration;

/// <summary>The HTTP API process (section "Api").</summary>
public sealed class ApiOptions : IValidatableObject
{
    public const string Section = "Api";

    /// <summary>Where the API listens. Loopback by default, and always without API keys.</summary>
    [Required, MinLength(1)]
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    /// <summary>Request bodies above this are refused with 413.</summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>The former name of <c>Jobs:MaxJsonDepth</c>, read by API and workers when that key is not set (<see cref="JobsOptions.ApplyFormerKeys"/>).</summary>
    [Range(4, 256)]
    public int MaxJsonDepth { get; set; } = 32;

    /// <summary>Requests per second each API key (or, without keys, each client address) may make; bursts up to <see cref="RateLimitBurst"/>.</summary>
    [Range(1, 1_000_000)]
    public int RateLimitPerSecond { get; set; } = 5000;

    [Range(1, 1_000_000)]
    public int RateLimitBurst { get; set; } = 10000;

    /// <summary>
    /// Addresses of reverse proxies (e.g. "127.0.0.1" for nginx on the same machine) whose X-Forwarded-For and
    /// X-Forwarded-Proto are believed, so rate limits and the failed-key throttle see each client, not the proxy.
    /// Empty: those headers are ignored (anyone can send them).
    /// </summary>
    public string[] TrustedProxies { get; set; } = [];

    /// <summary>POST /maps carries all items at once, so it gets a larger limit of its own.</summary>
    [Range(1024, 4L * 1024 * 1024 * 1024)]
    public long MaxMapRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) =>
        TrustedProxies.Where(p => !System.Net.IPAddress.TryParse(p, out _))
            .Select(p => new ValidationResult($"Api:TrustedProxies: '{p}' is not an IP address.", [nameof(TrustedProxies)]));
}
