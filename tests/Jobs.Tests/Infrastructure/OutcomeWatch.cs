using Npgsql;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// Watches one job's row while a test runs (every 50 ms, on a connection of its own): the outcomes it saw — each distinct
/// finished state, finish time, result and error — and whether a finished job was ever reopened. A job with one outcome
/// shows one, however many runs tried to write theirs.
/// </summary>
public sealed class OutcomeWatch : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _outcomes = [];
    private readonly List<string> _reopened = [];
    private readonly Task _watching;

    private OutcomeWatch(TestDatabase database, Guid id) => _watching = Task.Run(() => WatchAsync(database, id));

    public static OutcomeWatch Start(TestDatabase database, Guid id) => new(database, id);

    private async Task WatchAsync(TestDatabase database, Guid id)
    {
        var finished = false;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(database.ConnectionString);
                await connection.OpenAsync(_stop.Token);
                while (!_stop.IsCancellationRequested)
                {
                    await using var cmd = new NpgsqlCommand(
                        "SELECT state, finished_at IS NOT NULL, concat_ws(' | ', state, finished_at, result::text, error::text) FROM jobs.job WHERE id = $1",
                        connection) { Parameters = { new() { Value = id } } };
                    await using (var reader = await cmd.ExecuteReaderAsync(_stop.Token))
                    {
                        if (await reader.ReadAsync(_stop.Token))
                        {
                            var (state, isFinished, outcome) = (reader.GetString(0), reader.GetBoolean(1), reader.GetString(2));
                            lock (_outcomes)
                            {
                                if (isFinished && !_outcomes.Contains(outcome)) _outcomes.Add(outcome);
                                if (finished && !isFinished) _reopened.Add(state);
                            }
                            finished = isFinished;
                        }
                    }
                    await Task.Delay(50, _stop.Token);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { return; }
            catch (NpgsqlException) { await Task.Delay(200); } // e.g. a PostgreSQL restart: look again
        }
    }

    /// <summary>Stops watching (after one more look) and asserts that the job finished once, with one outcome.</summary>
    public async Task AssertOneOutcomeAsync()
    {
        await Task.Delay(100);
        await StopAsync();
        lock (_outcomes)
        {
            Assert.True(_reopened.Count == 0, $"the finished job was reopened ({string.Join(", ", _reopened)})");
            Assert.True(_outcomes.Count == 1, $"{_outcomes.Count} outcomes: {string.Join(" / ", _outcomes)}");
        }
    }

    private async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _watching;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }
}
