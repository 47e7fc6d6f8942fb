using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;
using Polly;
using Polly.Retry;

namespace Jobs.Core.Database;

/// <summary>
/// Retries a write that must not be lost (a job's outcome) while PostgreSQL is unreachable or restarting, or after a
/// deadlock: Polly's exponential backoff with jitter, from about 0.25 s up to 5 s between tries, for at most
/// <see cref="Patience"/>: no retry is decided after it (a try under way is never cut short).
/// </summary>
public static class DatabaseRetry
{
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private static readonly ResiliencePropertyKey<long> Started = new("jobs.database-retry.started");

    private static readonly ResiliencePipeline Pipeline = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && (IsUnavailable(e) || IsConflict(e))
                && !args.Context.CancellationToken.IsCancellationRequested
                && args.Context.Properties.TryGetValue(Started, out var started)
                && Stopwatch.GetElapsedTime(started) < Patience),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(250),
            MaxDelay = TimeSpan.FromSeconds(5),
            MaxRetryAttempts = int.MaxValue,
        })
        .Build();

    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> write, CancellationToken ct = default)
    {
        var context = ResilienceContextPool.Shared.Get(ct);
        context.Properties.Set(Started, Stopwatch.GetTimestamp());
        try
        {
            return await Pipeline.ExecuteAsync(static async (context, write) => await write(context.CancellationToken), context, write);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    public static Task RunAsync(Func<CancellationToken, Task> write, CancellationToken ct = default) =>
        RunAsync(async token => { await write(token); return true; }, ct);

    /// <summary>A deadlock or serialization failure: PostgreSQL rolled the statement back, and trying again will do.</summary>
    public static bool IsConflict(Exception e) =>
        e is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure };

    /// <summary>PostgreSQL is down, restarting or unreachable (as opposed to refusing the statement).</summary>
    public static bool IsUnavailable(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal)   // connection exception
                                || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) // admin/crash shutdown, cannot connect now
                                || pg.SqlState == PostgresErrorCodes.TooManyConnections,
        NpgsqlException { IsTransient: true } => true,
        NpgsqlException { InnerException: SocketException or IOException or TimeoutException } => true,
        SocketException or TimeoutException => true,
        _ => e.InnerException is { } inner && IsUnavailable(inner),
    };
}
