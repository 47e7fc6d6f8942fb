using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Security;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> (or HTTP Basic with the key as password, so a browser can open the
/// dashboard). The key's SHA-256 is compared with every configured hash in constant time.
/// </summary>
internal sealed class ApiKeyAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptionsMonitor<AuthOptions> auth,
    IOptions<AuthOptions> atStart,
    FailedAuthentication failures,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    private TimeSpan? _blocked;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = PresentedKey(Request.Headers.Authorization.ToString());
        // Whether keys are required at all is decided at start, as the binding is: a reload that removes every key
        // closes the API (no key matches), it does not open it.
        if (presented is null || !atStart.Value.Enabled) return Task.FromResult(AuthenticateResult.NoResult());
        var address = Context.Connection.RemoteIpAddress?.ToString() ?? "";
        if (failures.Blocked(address) is { } wait)
        {
            _blocked = wait;
            return Task.FromResult(AuthenticateResult.Fail("Too many refused keys from this address."));
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        ApiKey? match = null;
        foreach (var key in auth.CurrentValue.ApiKeys)
        {
            // Every configured key is compared, matched or not, so timing says nothing about which one is close.
            if (CryptographicOperations.FixedTimeEquals(hash, Convert.FromHexString(key.Sha256!)) && match is null) match = key;
        }
        if (match is null)
        {
            failures.Failed(address);
            return Task.FromResult(AuthenticateResult.Fail("The API key is not valid."));
        }
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, match.Name), new Claim(ClaimTypes.Role, match.Role)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (_blocked is { } wait)
        {
            await RateLimitSetup.TooManyRequestsAsync(Context, wait,
                "Too many refused API keys came from this address (Auth:MaxFailedAttemptsPerMinute); no key is checked until then.");
            return;
        }
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"Jobs\", Basic realm=\"Jobs\"";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = 401,
                Title = "API key required",
                Detail = Request.Headers.Authorization.Count == 0
                    ? "Send an API key as 'Authorization: Bearer <key>'."
                    : "The API key is not valid. Send a configured key as 'Authorization: Bearer <key>'.",
            },
        });
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = 403, Title = "Not allowed for this key", Detail = "This API key is read-only; submitting and canceling need an admin key." },
        });
    }

    private static string? PresentedKey(string header)
    {
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return header[7..].Trim() is { Length: > 0 } k ? k : null;
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = decoded.IndexOf(':');
            return colon >= 0 && colon < decoded.Length - 1 ? decoded[(colon + 1)..] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
