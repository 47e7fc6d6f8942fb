namespace Jobs.Core.Idempotency;

/// <summary>
/// An Idempotency-Key with the hash of the request it was first used for. <paramref name="Scope"/> is the API key
/// that sent it (empty without keys): each API key has its own keys, so one client cannot replay another's job.
/// </summary>
public sealed record IdempotencyClaim(string Key, byte[] RequestHash, TimeSpan Window, string Scope = "")
{
    /// <summary>The key as stored: the scope and the key, apart (a header value cannot hold U+001F).</summary>
    public string StoredKey => Scope.Length == 0 ? Key : Scope + "\u001f" + Key;
}

/// <summary>The same Idempotency-Key was used before with a different request.</summary>
public sealed class IdempotencyConflictException(string key)
    : Exception($"Idempotency-Key '{key}' was already used with a different request. Use a new key for a different request.");
