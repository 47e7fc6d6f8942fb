using System.Net.Sockets;
using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// Retries a write that must not be lost (a job's outcome) while PostgreSQL is unreachable or restarting, or
/// after a deadlock:
/// 0.25 s, 0.5 s, 1 s … up to 5 s between tries, for at most <see cref="Patience"/>.
/// </summary>
public static class DatabaseRetry
{
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> write, CancellationToken ct = default)
    {
        var deadline = DateTime.UtcNow + Patience;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                return await write(ct);
            }
            catch (Exception e) when ((IsUnavailable(e) || IsConflict(e)) && DateTime.UtcNow + delay < deadline && !ct.IsCancellationRequested)
            {
                await Task.Delay(delay, ct);
                delay = delay * 2 < TimeSpan.FromSeconds(5) ? delay * 2 : TimeSpan.FromSeconds(5);
            }
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
