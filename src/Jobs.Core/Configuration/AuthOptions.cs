using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace Jobs.Core.Configuration;

/// <summary>API keys (section "Auth"). Only SHA-256 hashes of the keys are configured, never the keys.</summary>
public sealed partial class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";
    public const string AdminRole = "admin";
    public const string ReadOnlyRole = "readonly";

    /// <summary>Empty: no authentication, and the API listens on loopback only.</summary>
    public ApiKey[] ApiKeys { get; set; } = [];

    public bool Enabled => ApiKeys.Length > 0;

    /// <summary>Refused keys a client address may present per minute; beyond that it gets 429, whatever key it sends.</summary>
    [Range(1, 100_000)]
    public int MaxFailedAttemptsPerMinute { get; set; } = 30;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var name in ApiKeys.GroupBy(k => k.Name).Where(g => g.Count() > 1).Select(g => g.Key))
            yield return new ValidationResult($"Auth:ApiKeys: the name \"{name}\" is given to more than one key; each key's name is its own (rate limits and Idempotency-Keys go by it).", ["ApiKeys"]);
        for (var i = 0; i < ApiKeys.Length; i++)
        {
            var key = ApiKeys[i];
            if (string.IsNullOrWhiteSpace(key.Name))
                yield return new ValidationResult($"Auth:ApiKeys:{i}:Name is required (it names the key in logs and rate limits).", ["ApiKeys"]);
            if (key.Sha256 is null || !Sha256Pattern().IsMatch(key.Sha256))
                yield return new ValidationResult($"Auth:ApiKeys:{i}:Sha256 must be the 64 hex digits of the key's SHA-256 (printf %s \"$KEY\" | sha256sum).", ["ApiKeys"]);
            if (key.Role is not (AdminRole or ReadOnlyRole))
                yield return new ValidationResult($"Auth:ApiKeys:{i}:Role must be \"{AdminRole}\" or \"{ReadOnlyRole}\".", ["ApiKeys"]);
        }
    }

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Sha256Pattern();
}

public sealed class ApiKey
{
    public string Name { get; set; } = "";

    /// <summary>Hex SHA-256 of the key as clients send it.</summary>
    public string? Sha256 { get; set; }

    /// <summary>"admin": everything; "readonly": GET endpoints and a read-only dashboard.</summary>
    public string Role { get; set; } = AuthOptions.AdminRole;
}
