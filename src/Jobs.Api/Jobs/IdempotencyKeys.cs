using Jobs.Api.Problems;
using Jobs.Core.Storage;

namespace Jobs.Api.Jobs;

/// <summary>The Idempotency-Key header as POST /jobs and POST /maps read it.</summary>
public static class IdempotencyKeys
{
    public const string Header = "Idempotency-Key";

    /// <summary>The claim for <paramref name="key"/> (null when none was sent); 400 when the key is malformed.</summary>
    public static IdempotencyClaim? Claim(string? key, Func<byte[]> requestHash, TimeSpan window)
    {
        if (key is null) return null;
        if (key.Length is 0 or > 255)
            throw new RequestRefusedException(400, "Invalid Idempotency-Key", "An Idempotency-Key is 1–255 characters.", Header);
        return new IdempotencyClaim(key, requestHash(), window);
    }

    /// <summary>The same key sent before with a different request: 422.</summary>
    public static RequestRefusedException Reused(IdempotencyConflictException e) => new(422, "Idempotency-Key reused", e.Message, Header);
}
