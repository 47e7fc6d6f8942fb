namespace Jobs.Core.Queue;

/// <summary>
/// When a durable retry runs: a job's retry and a callback's redelivery are each a Hangfire job scheduled for later, so
/// they survive restarts of every process (an in-process retry, as <c>DatabaseRetry</c>'s Polly pipeline, would not).
/// The delay doubles from <c>first</c> and is capped at <c>max</c>; with jitter it is spread over ±20 % so that many
/// retries of one cause (a receiver that was down) do not all arrive at the same second.
/// </summary>
public static class RetryDelays
{
    public static TimeSpan Exponential(int attempt, TimeSpan first, TimeSpan max, bool jitter = false)
    {
        var delay = first * Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        if (delay > max) delay = max;
        return jitter ? delay * (0.8 + 0.4 * Random.Shared.NextDouble()) : delay;
    }
}
