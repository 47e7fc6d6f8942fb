using Jobs.Api.Problems;
using Jobs.Core.Idempotency;

namespace Jobs.Api.SingleJobs;

/// <summary>The Idempotency-Key header as POST /jobs and POST /maps read it.</summary>
internal static class IdempotencyKeys
{
    public const string Header = "Idempotency-Key";

    /// <summary>
    /// The claim for <paramref name="key"/> (null when none was sent), in the namespace of the API key that sent it
    /// (<paramref name="caller"/>: its name, null without keys); 400 when the key is malformed.
    /// </summary>
    public static IdempotencyClaim? Claim(string? key, string? caller, Func<byte[]> requestHash, TimeSpan window)
    {
        if (key is null) return null;
        if (key.Length is 0 or > 255 || key.Any(char.IsControl))
            throw new RequestRefusedException(400, "Invalid Idempotency-Key", "An Idempotency-Key is 1–255 characters, none of them control characters.", Header);
        return new IdempotencyClaim(key, requestHash(), window, caller ?? "");
    }

    /// <summary>The API key a request came with (its configured name), or null when keys are not configured.</summary>
    public static string? Caller(HttpContext http) => http.User.Identity?.IsAuthenticated == true ? "key:" + http.User.Identity.Name : null;

    /// <summary>The same key sent before with a different request: 422.</summary>
    public static RequestRefusedException Reused(IdempotencyConflictException e) => new(422, "Idempotency-Key reused", e.Message, Header);
}
