using System.ComponentModel.DataAnnotations;

namespace Jobs.Core.Callbacks;

/// <summary>Completion callbacks (section "Callbacks"): Pool's callback/error_callback, over HTTP.</summary>
public sealed class CallbackOptions : IValidatableObject
{
    public const string Section = "Callbacks";

    /// <summary>
    /// Where callbacks may be sent: "hooks.example.com" (that host on its scheme's default port, 80 or 443 — a host
    /// alone must not let a client probe every port of it and read "Connection refused" back), "127.0.0.1:8080" (that
    /// port), or "hooks.internal:*" (every port, said explicitly). Empty: callbacks are refused at submit, so the
    /// service cannot be made to call arbitrary addresses (SSRF).
    /// </summary>
    public string[] AllowedHosts { get; set; } = [];

    /// <summary>Key for the HMAC-SHA256 signature in X-Jobs-Signature. Required when any host is allowed.</summary>
    public string Secret { get; set; } = "";

    /// <summary>Deliveries are retried with exponential backoff and jitter (1 s, 2 s, 4 s, … at most 5 min) up to this many times.</summary>
    [Range(0, 20)]
    public int MaxAttempts { get; set; } = 8;

    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool Allows(Uri url) =>
        url.Scheme is "http" or "https"
        && AllowedHosts.Any(h => (url.IsDefaultPort && string.Equals(h, url.Host, StringComparison.OrdinalIgnoreCase))
                                 || string.Equals(h, url.Authority, StringComparison.OrdinalIgnoreCase)
                                 || (h.EndsWith(":*", StringComparison.Ordinal) && string.Equals(h[..^2], url.Host, StringComparison.OrdinalIgnoreCase)));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (AllowedHosts.Length > 0 && Secret.Length < 16)
            yield return new ValidationResult("Callbacks:Secret must be at least 16 characters when Callbacks:AllowedHosts is set.", [nameof(Secret)]);
    }
}
