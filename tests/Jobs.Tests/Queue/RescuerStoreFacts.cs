using System.Diagnostics;
using Jobs.Core.Queue;
using Jobs.Core.Queue.Maintenance;
using Jobs.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// The rescuer's give-backs on Hangfire's queue table: what it gives back, when, and that a give-back fences the
/// fetch it took (a late holder can neither renew nor remove the row any more). The rescuer's give-back loop runs on a
/// thread of its own, as in a worker, with a 2-second invisibility timeout.
/// </summary>
[Collection(QueueCollection.Name)]
public sealed class RescuerStoreFacts(QueueFixture fixture) : IAsyncLifetime
{
    private static readonly TimeSpan Invisibility = TimeSpan.FromSeconds(2);

    public Task InitializeAsync() => fixture.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_fetch_nobody_renewed_is_given_back_with_a_new_generation_and_its_late_holder_is_fenced_off()
    {
        var store = new JobQueueStore(fixture.DataSource);
        await fixture.EnqueueAsync("rescue", 2);
        var (stale, _) = store.TryFetch("rescue", ["rescue"]);
        var (renewed, _) = store.TryFetch("rescue", ["rescue"]);
        Assert.NotNull(stale);
        Assert.NotNull(renewed);
        await fixture.ScalarAsync<int>($"UPDATE hangfire.jobqueue SET fetchedat = now() - interval '1 minute' WHERE id = {stale.Id}; SELECT 1");

        Assert.Equal(0, store.GiveBackAbandoned(TimeSpan.FromMinutes(5)));
        Assert.Equal(1, store.Renew([renewed]));
        Assert.Equal(1, store.GiveBackAbandoned(TimeSpan.FromSeconds(30)));

        // The stale holder's renewal and removal match its generation, which the give-back replaced.
        Assert.Equal(0, store.Renew([stale]));
        store.Finish(stale, delete: true);
        Assert.Equal("unfetched, new generation", await fixture.ScalarAsync<string>(
            $"SELECT CASE WHEN fetchedat IS NULL AND updatecount <> {stale.Generation} THEN 'unfetched, new generation' ELSE 'held' END FROM hangfire.jobqueue WHERE id = {stale.Id}"));
        // Fetched again, it is a new fetch that only its new holder can end.
        var (again, _) = store.TryFetch("rescue", ["rescue"]);
        Assert.Equal(stale.JobId, again!.JobId);
        Assert.NotEqual(stale.Generation, again.Generation);
        Assert.Equal(2, store.Renew([renewed, again, stale]));
    }

    [Fact]
    public async Task The_rescuer_gives_back_an_abandoned_fetch_only_after_a_whole_invisibility_timeout_of_answers_from_PostgreSQL()
    {
        var store = new JobQueueStore(fixture.DataSource);
        await fixture.EnqueueAsync("rescue", 1);
        var (abandoned, _) = store.TryFetch("rescue", ["rescue"]);
        // Unrenewed for a minute already: a rescuer that gave back at once would take it in its first second.
        await fixture.ScalarAsync<int>($"UPDATE hangfire.jobqueue SET fetchedat = now() - interval '1 minute' WHERE id = {abandoned!.Id}; SELECT 1");

        var rescue = new AbandonedFetches(store, Invisibility, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var thread = new Thread(() => rescue.GiveBack(stop.Token)) { IsBackground = true };
        thread.Start();
        try
        {
            await Eventually.TrueAsync(async () => await fixture.ScalarAsync<bool>(
                $"SELECT fetchedat IS NULL FROM hangfire.jobqueue WHERE id = {abandoned.Id}"), "the abandoned fetch given back", 15);
            Assert.True(clock.Elapsed >= Invisibility, $"given back after {clock.Elapsed.TotalSeconds:F1} s, before one invisibility timeout ({Invisibility.TotalSeconds} s) of healthy statements");
        }
        finally
        {
            stop.Cancel();
            thread.Join();
        }
    }

    [Fact]
    public async Task A_fetch_never_started_is_given_back_only_at_the_generation_that_was_seen()
    {
        var store = new JobQueueStore(fixture.DataSource);
        var ids = await fixture.EnqueueAsync("rescue", 1);
        await fixture.ScalarAsync<int>($"UPDATE hangfire.job SET statename = 'Enqueued' WHERE id = {ids[0]}; SELECT 1");
        var (seen, _) = store.TryFetch("rescue", ["rescue"]);
        Assert.Equal(0, await store.GiveBackNeverStartedAsync([(seen!.JobId, seen.Generation + 1)], default));
        Assert.Equal(1, await store.GiveBackNeverStartedAsync([(seen.JobId, seen.Generation)], default));
        Assert.Equal(0, await store.GiveBackNeverStartedAsync([(seen.JobId, seen.Generation)], default));
        // Started (Processing) fetches are the heartbeat's business, not this repair's.
        var (fetched, _) = store.TryFetch("rescue", ["rescue"]);
        await fixture.ScalarAsync<int>($"UPDATE hangfire.job SET statename = 'Processing' WHERE id = {ids[0]}; SELECT 1");
        Assert.Equal(0, await store.GiveBackNeverStartedAsync([(fetched!.JobId, fetched.Generation)], default));
    }
}
