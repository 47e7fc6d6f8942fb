using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using Hangfire.Server;
using Hangfire;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Timeout;

namespace Jobs.Core.Callbacks;

/// <summary>
/// Pool's callback/error_callback over HTTP: when a job with a <c>callbackUrl</c> finishes, its JobView is POSTed
/// there, signed with HMAC-SHA256 (<c>X-Jobs-Signature: sha256=&lt;hex&gt;</c> over the exact body, key
/// Callbacks:Secret). Delivery is a Hangfire job of its own, so it survives worker restarts, and is retried with
/// exponential backoff (1 s, 2 s, 4 s, …) up to Callbacks:MaxAttempts. Only hosts in Callbacks:AllowedHosts are
/// ever called; redirects are not followed.
/// </summary>
public sealed class CallbackSender(
    JobQueries jobs,
    JobCallbackStore store,
    IHttpClientFactory httpClients,
    IOptionsMonitor<CallbackOptions> options,
    ILogger<CallbackSender> logger)
{
    public const string HttpClientName = "callbacks";
    public const string SignatureHeader = "X-Jobs-Signature";

    /// <summary>Redeliveries wait 1 s, 2 s, 4 s … (±20 %), never more than this (2^19 s, six days, before it was capped).</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromMinutes(5);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    [JobDisplayName("callback for job {0}")]
    [AutomaticRetry(Attempts = 0, LogEvents = false)] // retries are scheduled below, with the configured limit
    public async Task SendAsync(Guid jobId, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var job = await jobs.GetAsync(jobId, ct);
        if (job?.CallbackUrl is null) return; // purged, or never had one
        // Run again after a delivery it recorded (its worker killed or cut off before Hangfire's Succeeded, the sender
        // given back by the rescuer): sent once is enough. A delivery whose record was lost is sent again — at least once;
        // X-Jobs-Job-Id lets a receiver drop the second (found by the chaos soak on hosts: 1 of 578 delivered twice).
        if (Delivered(job.Callback))
        {
            logger.LogInformation("Callback for job {JobId}: delivered already; not sent again", jobId);
            return;
        }
        var settings = options.CurrentValue;
        var attempt = context.GetJobParameter<int>("CallbackAttempt") + 1;
        context.SetJobParameter("CallbackAttempt", attempt);

        string? error = null;
        var url = new Uri(job.CallbackUrl);
        if (!settings.Allows(url))
        {
            error = $"{url.Authority} is no longer in Callbacks:AllowedHosts";
            attempt = settings.MaxAttempts; // configuration, not the network: retrying will not help
        }
        else
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(JobView.From(job), Json);
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add(SignatureHeader, Sign(body, settings.Secret));
            request.Headers.Add("X-Jobs-Job-Id", jobId.ToString());
            request.Headers.Add("X-Jobs-Delivery-Attempt", attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                // Callbacks:Timeout per delivery, through the client's resilience pipeline (CallbacksSetup).
                using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, ct);
                if (!response.IsSuccessStatusCode) error = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            }
            catch (TimeoutRejectedException)
            {
                error = $"no answer within Callbacks:Timeout ({settings.Timeout.TotalSeconds:0.###} s)";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                error = e.Message;
            }
        }

        if (error is null)
        {
            await store.SetCallbackStatusAsync(jobId, Status("delivered", attempt, null), CancellationToken.None);
            return;
        }
        var final = attempt >= settings.MaxAttempts;
        await store.SetCallbackStatusAsync(jobId, Status(final ? "failed" : "retrying", attempt, error), CancellationToken.None);
        logger.LogWarning("Callback for job {JobId} to {Url} failed (attempt {Attempt}): {Error}", jobId, url, attempt, error);
        if (!final)
            throw new CallbackFailedException(error, retryIn: RetryDelays.Exponential(attempt, TimeSpan.FromSeconds(1), MaxRetryDelay, jitter: true));
        throw new CallbackFailedException($"gave up after {attempt} attempts: {error}", retryIn: null);
    }

    private static bool Delivered(string? callback) =>
        callback is not null && JsonNode.Parse(callback)?["status"]?.GetValue<string>() == "delivered";

    public static string Sign(byte[] body, string secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private static string Status(string status, int attempts, string? lastError) => new JsonObject
    {
        ["status"] = status,
        ["attempts"] = attempts,
        ["lastError"] = lastError,
        ["at"] = DateTime.UtcNow,
    }.ToJsonString();
}

/// <summary>A delivery that failed; <see cref="RetryIn"/> tells <see cref="RetryFilter"/> when to try again.</summary>
public sealed class CallbackFailedException(string message, TimeSpan? retryIn) : Exception(message), IRetryable
{
    public TimeSpan? RetryIn { get; } = retryIn;
}
