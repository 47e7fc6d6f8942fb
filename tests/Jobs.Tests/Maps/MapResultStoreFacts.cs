using Jobs.Core.Maps;
using Jobs.Tests.Infrastructure;
using Npgsql;

namespace Jobs.Tests.Maps;

/// <summary>
/// Map item outcomes are appended to jobs.map_result (issue 24): a batch of outcomes takes no lock on the map's row, so
/// the batches of a map's chunks write side by side; completion-order readers still never pass over an outcome that
/// commits after one they have read; an item keeps its first outcome; DELETE /maps/{id} waits for the batches in flight
/// and none writes after it.
/// </summary>
[Collection(StoreCollection.Name)]
public sealed class MapResultStoreFacts(StoreFixture store) : IAsyncLifetime
{
    private static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    public Task InitializeAsync() => store.Database.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<MapRecord> SquaresAsync(int items, int chunksize)
    {
        var (map, _) = await store.MapSubmissions.InsertAsync(new NewMap("math.square", "{}", Star: false, "q", chunksize, Window: 100),
            [.. Enumerable.Range(0, items).Select(i => $"[{i}]")], null, default);
        for (var chunk = 0; chunk < map.Chunks; chunk++) await store.MapExecution.ClaimChunkAsync(map.Id, chunk, $"hf-{chunk}", "w", default);
        return map;
    }

    private Task FlushAsync(Guid mapId, int index, CancellationToken ct = default) =>
        store.MapExecution.FlushAsync(mapId, [index], [MapItemStates.Succeeded], [$"{index * index}"], [null], ct);

    /// <summary>A batch of outcomes written in a transaction left open, as a slow writer's: the caller commits or disposes it.</summary>
    private async Task<(NpgsqlConnection Connection, NpgsqlTransaction Tx)> OpenBatchAsync(Guid mapId, int index)
    {
        var connection = await store.DataSource.OpenConnectionAsync();
        var tx = await connection.BeginTransactionAsync();
        await MapExecutionStore.WriteAsync(connection, mapId, [index], [MapItemStates.Succeeded], [$"{index * index}"], [null], null, default);
        return (connection, tx);
    }

    [Fact]
    public async Task A_batch_of_outcomes_does_not_wait_for_the_maps_row_lock()
    {
        var map = await SquaresAsync(items: 4, chunksize: 2);
        // The map's row held, as a chunk's end, a window refill or (before issue 24) another chunk's batch holds it.
        await using var holder = await store.DataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var lockMap = new NpgsqlCommand("SELECT 1 FROM jobs.map WHERE id = $1 FOR UPDATE", holder, tx) { Parameters = { new() { Value = map.Id } } })
            await lockMap.ExecuteNonQueryAsync();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var flush = FlushAsync(map.Id, 0, timeout.Token);
        var finished = await Task.WhenAny(flush, Task.Delay(TimeSpan.FromSeconds(5)));
        await tx.RollbackAsync();

        Assert.True(finished == flush && flush.IsCompletedSuccessfully, "the batch waited for the map's row lock");
        Assert.Equal(1, (await store.MapQueries.GetAsync(map.Id, default))!.Succeeded);
    }

    [Fact]
    public async Task Two_batches_of_one_map_are_open_at_once_and_both_count()
    {
        var map = await SquaresAsync(items: 4, chunksize: 2);
        var (connection, tx) = await OpenBatchAsync(map.Id, 0);
        await using (connection)
        await using (tx)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await FlushAsync(map.Id, 2, timeout.Token); // another chunk's batch: it does not wait for the open one
            Assert.Equal(1, (await store.MapQueries.GetAsync(map.Id, default))!.Succeeded);
            await tx.CommitAsync();
        }
        var after = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal((2, 0, 2), (after.Succeeded, after.Failed, after.Pending));
    }

    [Fact]
    public async Task A_completion_order_reader_never_passes_an_outcome_that_commits_after_one_it_read()
    {
        var map = await SquaresAsync(items: 4, chunksize: 2);
        // Item 0's batch starts first and commits last; item 2's commits in between.
        var (connection, tx) = await OpenBatchAsync(map.Id, 0);
        var read = new List<int>();
        (long, int) cursor = (0, -1);
        async Task<bool> ReadAsync()
        {
            var (outcomes, heldBack) = await store.MapQueries.FinishedAfterAsync(map.Id, cursor, 1000, default);
            read.AddRange(outcomes.Select(o => o.Index));
            if (outcomes.Count > 0) cursor = (outcomes[^1].Xid, outcomes[^1].Index);
            return heldBack;
        }
        await using (connection)
        await using (tx)
        {
            await FlushAsync(map.Id, 2);
            Assert.True(await ReadAsync(), "item 2's outcome is committed but held back behind the batch still open");
            Assert.Empty(read);
            await tx.CommitAsync();
        }
        Assert.False(await ReadAsync());
        Assert.Equal([0, 2], read);
        await FlushAsync(map.Id, 1);
        Assert.False(await ReadAsync());
        Assert.Equal([0, 2, 1], read);
    }

    [Fact]
    public async Task An_item_keeps_its_first_outcome_when_a_second_batch_writes_it()
    {
        var map = await SquaresAsync(items: 2, chunksize: 2);
        await FlushAsync(map.Id, 1);
        await store.MapExecution.FlushAsync(map.Id, [0, 1], [MapItemStates.Succeeded, MapItemStates.Failed], ["0", null], [null, """{"type":"x"}"""], default);

        var after = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal((2, 0), (after.Succeeded, after.Failed));
        Assert.Equal(2L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_result WHERE map_id = $1", map.Id));
        Assert.Null(await store.MapQueries.FirstFailureAsync(map.Id, default));
        Assert.Empty(await store.MapExecution.PendingItemsAsync(map.Id, 0, 2, default));
    }

    [Fact]
    public async Task A_cancel_waits_for_the_batches_in_flight_and_no_batch_writes_after_it()
    {
        var map = await SquaresAsync(items: 4, chunksize: 2);
        var (connection, tx) = await OpenBatchAsync(map.Id, 0);
        Task<(bool Canceled, string State, IReadOnlyList<string> HangfireJobs)?> cancel;
        await using (connection)
        await using (tx)
        {
            cancel = store.MapSubmissions.CancelAsync(map.Id, Retention, default);
            await Task.Delay(300);
            Assert.False(cancel.IsCompleted, "the cancel did not wait for the batch in flight");
            await tx.CommitAsync();
        }
        Assert.True((await cancel)!.Value.Canceled);
        await FlushAsync(map.Id, 2);

        var canceled = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal(("canceled", 1, 0, 3), (canceled.State, canceled.Succeeded, canceled.Failed, canceled.Canceled));
        Assert.Equal(1L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_result WHERE map_id = $1", map.Id));
        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_tally WHERE map_id = $1", map.Id));
        Assert.Equal(1, (await store.MapQueries.FirstFailureAsync(map.Id, default))!.Value.Index);

        await store.MapSubmissions.SettleCanceledAsync(map.Id, default);
        Assert.Equal([0, 1, 2, 3], (await store.MapQueries.FinishedFromIndexAsync(map.Id, 0, 10, default)).Select(o => o.Index));
        var settled = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal(("canceled", 1, 3), (settled.State, settled.Succeeded, settled.Canceled));
    }

    [Fact]
    public async Task The_maps_end_folds_the_batches_tallies_into_its_counts()
    {
        var map = await SquaresAsync(items: 2, chunksize: 1);
        await FlushAsync(map.Id, 0);
        await store.MapExecution.FlushAsync(map.Id, [1], [MapItemStates.Failed], [null], ["""{"type":"ValueError"}"""], default);
        Assert.True(await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_tally WHERE map_id = $1", map.Id) > 0);

        await store.MapExecution.FinishChunkAsync(map.Id, 0, "hf-0", "done", Retention, default);
        await store.MapExecution.FinishChunkAsync(map.Id, 1, "hf-1", "done", Retention, default);

        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_tally WHERE map_id = $1", map.Id));
        var done = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal(("failed", 1, 1), (done.State, done.Succeeded, done.Failed));
        Assert.Equal(1, await store.Database.ScalarAsync<int>("SELECT failed FROM jobs.map WHERE id = $1", map.Id));
    }

    [Fact]
    public async Task A_map_past_its_retention_goes_with_its_outcomes_and_tallies()
    {
        var map = await SquaresAsync(items: 2, chunksize: 2);
        var kept = await SquaresAsync(items: 2, chunksize: 2);
        await FlushAsync(map.Id, 0);
        await FlushAsync(kept.Id, 0);
        await store.Database.ScalarAsync<int>("UPDATE jobs.map SET state = 'failed', expires_at = now() - interval '1 second' WHERE id = $1 RETURNING 1", map.Id);

        Assert.Equal(1, await store.MapSubmissions.PurgeExpiredAsync(10, default));

        foreach (var table in new[] { "map_item", "map_result", "map_tally" })
        {
            Assert.Equal(0L, await store.Database.ScalarAsync<long>($"SELECT count(*) FROM jobs.{table} WHERE map_id = $1", map.Id));
            Assert.True(await store.Database.ScalarAsync<long>($"SELECT count(*) FROM jobs.{table} WHERE map_id = $1", kept.Id) > 0, table);
        }
    }
}
