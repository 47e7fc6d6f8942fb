using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// PostgreSQL's clock, read in this process: the local clock plus the offset to PostgreSQL's <c>clock_timestamp()</c>,
/// measured when the process starts and every minute after (of five round trips, the shortest, its midpoint). Every
/// decision a process takes about time against what is stored reads this clock, not its own: whether a job is due or
/// delayed, when it runs ("delaySeconds", the time a retry is scheduled for, a stranded delayed job's dispatch), whether
/// a worker's heartbeat is recent. What PostgreSQL decides by itself uses <c>now()</c> (rescue, invariants, retention);
/// Hangfire's schedulers read it through the storage (<c>AdvisoryLockStorage</c>'s <c>GetUtcDateTime</c>). A host whose
/// clock is minutes off thus decides as the database does; the offset is logged when it exceeds a second.
/// <para>
/// Until its first measurement a process knows only its own clock: a worker starts work only once measured (a worker
/// restarted while cut off from PostgreSQL scheduled a retry by its own clock, 10 minutes late, in the chaos soak with
/// skewed clocks), and the API measures on demand what it needs before (<see cref="UtcNowAsync"/>).
/// </para>
/// </summary>
public sealed class DatabaseClock(NpgsqlDataSource dataSource, ILogger<DatabaseClock> logger) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(1);
    private long _offsetTicks;
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>PostgreSQL's time now, as well as this process knows it (its own clock until the first measurement).</summary>
    public DateTime UtcNow => DateTime.UtcNow + Offset;

    /// <summary>PostgreSQL's clock minus this host's.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    /// <summary>Completes at the first measurement.</summary>
    public Task Measured => _first.Task;

    /// <summary>
    /// <see cref="UtcNow"/>, measuring first if this process has not yet: throws as PostgreSQL's absence does when it
    /// cannot (what needs the time then needs PostgreSQL too).
    /// </summary>
    public async ValueTask<DateTime> UtcNowAsync(CancellationToken ct)
    {
        if (!_first.Task.IsCompleted) Set(await MeasureAsync(ct));
        return UtcNow;
    }

    private void Set(TimeSpan offset)
    {
        Interlocked.Exchange(ref _offsetTicks, offset.Ticks);
        _first.TrySetResult();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var logged = TimeSpan.Zero;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var offset = await MeasureAsync(stoppingToken);
                Set(offset);
                if (offset.Duration() > TimeSpan.FromSeconds(1) && (offset - logged).Duration() > TimeSpan.FromSeconds(1))
                    logger.LogWarning("This host's clock is {Offset:F1} s {Direction} PostgreSQL's: this process decides by PostgreSQL's", offset.Duration().TotalSeconds,
                        offset > TimeSpan.Zero ? "behind" : "ahead of");
                logged = offset;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested && (e is NpgsqlException or TimeoutException || DatabaseRetry.IsUnavailable(e)))
            {
                // PostgreSQL unavailable: keep the last offset and measure again.
            }
            try { await Task.Delay(_first.Task.IsCompleted ? Every : TimeSpan.FromSeconds(1), stoppingToken); }
            catch (OperationCanceledException) { return; }
        }
    }

    private async Task<TimeSpan> MeasureAsync(CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT clock_timestamp()", connection);
        var best = (RoundTrip: TimeSpan.MaxValue, Offset: TimeSpan.Zero);
        for (var i = 0; i < 5; i++)
        {
            var sent = DateTime.UtcNow;
            var clock = Stopwatch.StartNew();
            var theirs = DateTime.SpecifyKind((DateTime)(await cmd.ExecuteScalarAsync(ct))!, DateTimeKind.Utc);
            var roundTrip = clock.Elapsed;
            if (roundTrip < best.RoundTrip) best = (roundTrip, theirs - (sent + roundTrip / 2));
        }
        return best.Offset;
    }
}
