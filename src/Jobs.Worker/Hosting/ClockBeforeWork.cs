using Jobs.Core.Database;

namespace Jobs.Worker.Hosting;

/// <summary>
/// Holds the worker's start (the Hangfire server starts after it) until this process has read PostgreSQL's clock
/// (<see cref="DatabaseClock"/>): a worker decides when retries and delayed jobs run, and must not do so by its own
/// clock, which may be off. A worker that cannot reach PostgreSQL can run nothing anyway; it starts when it can.
/// </summary>
internal sealed class ClockBeforeWork(DatabaseClock clock, ILogger<ClockBeforeWork> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (clock.Measured.IsCompleted) return;
        logger.LogWarning("Waiting for PostgreSQL to read its clock before taking work");
        await clock.Measured.WaitAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
