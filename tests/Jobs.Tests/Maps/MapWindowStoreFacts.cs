using Jobs.Core.Maps;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Maps;

/// <summary>
/// A map's window on real PostgreSQL (<see cref="MapWindow"/>): a map starts with as many chunks having their turn as
/// its window, each chunk that ends gives exactly one turn on (also when chunks end at once), and a canceled map gives none.
/// </summary>
[Collection(StoreCollection.Name)]
public sealed class MapWindowStoreFacts(StoreFixture store) : IAsyncLifetime
{
    private static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    public Task InitializeAsync() => store.Database.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<MapRecord> MapAsync(int chunks, int window)
    {
        var (map, _) = await store.MapSubmissions.InsertAsync(new NewMap("math.square", "{}", Star: false, "q", Chunksize: 1, Window: window),
            [.. Enumerable.Range(0, chunks).Select(i => $"[{i}]")], null, default);
        return map;
    }

    private Task<long> WithTurnAsync(Guid mapId) => store.Database.ScalarAsync<long>(
        "SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND dispatched_at IS NOT NULL AND state IN ('enqueued', 'processing')", mapId);

    private async Task<IReadOnlyList<UndispatchedChunk>> RunAsync(Guid mapId, int chunk)
    {
        await store.MapExecution.ClaimChunkAsync(mapId, chunk, $"hf-{chunk}", "w", default);
        return await store.MapExecution.FinishChunkAsync(mapId, chunk, $"hf-{chunk}", "done", Retention, default);
    }

    [Fact]
    public async Task A_map_starts_with_its_window_and_each_chunk_that_ends_gives_the_next_its_turn_once()
    {
        var map = await MapAsync(chunks: 5, window: 2);

        Assert.Equal([0, 1], MapSubmissionStore.FirstTurns(map, 2).Select(c => c.Chunk));
        Assert.Equal(2L, await WithTurnAsync(map.Id));
        var afterFirst = await RunAsync(map.Id, 0);
        var again = await store.MapExecution.FinishChunkAsync(map.Id, 0, "hf-0", "done", Retention, default);

        Assert.Equal([(2, 2, 3)], afterFirst.Select(c => (c.Chunk, c.FirstIndex, c.EndIndex)));
        Assert.Empty(again); // a retried end of the same chunk gives nothing more
        Assert.Equal(2L, await WithTurnAsync(map.Id));
        Assert.Empty(await store.MapQueries.FindMapsBelowWindowAsync(TimeSpan.Zero, 10, default));
        Assert.Equal([3], (await RunAsync(map.Id, 1)).Select(c => c.Chunk));
        Assert.Equal([4], (await RunAsync(map.Id, 2)).Select(c => c.Chunk));
        Assert.Empty(await RunAsync(map.Id, 3));
        Assert.Empty(await RunAsync(map.Id, 4));
        Assert.Equal("succeeded", (await store.MapQueries.GetAsync(map.Id, default))!.State);
    }

    [Fact]
    public async Task A_retried_end_whose_first_try_carried_on_returns_the_chunks_it_took_and_a_late_runs_flush_records_nothing()
    {
        var map = await MapAsync(chunks: 6, window: 2);
        var run = Guid.CreateVersion7();
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-0", "w", default, run);
        var first = await store.MapExecution.FinishRunAsync(map.Id, 0, 1, "hf-0", "w", "done", Retention, carryItems: 2, default, run);
        // Its answer lost (the connection dropped at the commit), the same call is tried again.
        var again = await store.MapExecution.FinishRunAsync(map.Id, 0, 1, "hf-0", "w", "done", Retention, carryItems: 2, default, run);

        Assert.True(first.Ended);
        Assert.Equal((2, 4), (first.Carried!.FirstChunk, first.Carried.EndChunk));
        // The chunks the first try took are this run's to carry on with: left without a run, they waited for the rescuer.
        Assert.True(again.Ended);
        Assert.Equal((2, 4), (again.Carried!.FirstChunk, again.Carried.EndChunk));
        Assert.Empty(again.Next);

        // Another run takes them over (this worker lost them): the late run's flush and end change nothing.
        var owner = Guid.CreateVersion7();
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-0", "w2", default, owner); // its Hangfire job re-run: chunk 0 is done, it claims what hf-0 holds
        await store.MapExecution.FlushAsync(map.Id, [2], [MapItemStates.Succeeded], ["\"late\""], [null], default, fence: (2, run));
        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_result WHERE map_id = $1", map.Id));
        Assert.False((await store.MapExecution.FinishRunAsync(map.Id, 2, 4, "hf-0", "w", "done", Retention, carryItems: 0, default, run)).Ended);
        await store.MapExecution.FlushAsync(map.Id, [2], [MapItemStates.Succeeded], ["\"owner\""], [null], default, fence: (2, owner));
        Assert.Equal("\"owner\"", await store.Database.ScalarAsync<string>("SELECT result::text FROM jobs.map_result WHERE map_id = $1 AND index = 2", map.Id));
    }

    [Fact]
    public async Task Chunks_ending_at_once_never_give_the_same_turn_twice_nor_more_than_the_window()
    {
        var map = await MapAsync(chunks: 200, window: 8);
        var given = new List<int>();
        for (var round = 0; round < 24; round++)
        {
            var running = await store.Database.ScalarAsync<int[]>(
                "SELECT array_agg(chunk ORDER BY chunk) FROM jobs.map_chunk WHERE map_id = $1 AND dispatched_at IS NOT NULL AND state = 'enqueued'", map.Id);
            var ends = await Task.WhenAll(running!.Select(c => Task.Run(() => RunAsync(map.Id, c))));
            given.AddRange(ends.SelectMany(e => e.Select(c => c.Chunk)));
            Assert.True(await WithTurnAsync(map.Id) <= 8, "more chunks have their turn than the window allows");
        }

        Assert.Equal(given.Count, given.Distinct().Count());
        Assert.Equal(Enumerable.Range(8, given.Count), given.Order());
    }

    [Fact]
    public async Task A_canceled_map_gives_no_more_turns_and_names_only_the_hangfire_jobs_of_its_window()
    {
        var map = await MapAsync(chunks: 1000, window: 3);
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-0", "w", default);

        var canceled = await store.MapSubmissions.CancelAsync(map.Id, Retention, default);
        var after = await store.MapExecution.FinishChunkAsync(map.Id, 0, "hf-0", "canceled", Retention, default);

        Assert.Equal(["hf-0"], canceled!.Value.HangfireJobs);
        Assert.Empty(after);
        Assert.Equal(1000, (await store.MapQueries.GetAsync(map.Id, default))!.Canceled);
    }

    [Fact]
    public async Task A_canceled_maps_items_read_as_canceled_at_once_and_are_marked_in_batches_afterwards()
    {
        var map = await MapAsync(chunks: 50_000, window: 2);
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-0", "w", default);

        await store.MapSubmissions.CancelAsync(map.Id, Retention, default);
        await store.MapExecution.FlushAsync(map.Id, [0], [MapItemStates.Succeeded], ["0"], [null], default); // a running chunk's last write

        var view = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal(("canceled", 0, 50_000, 0), (view.State, view.Succeeded, view.Canceled, view.Pending));
        var first = await store.MapQueries.FirstFailureAsync(map.Id, default);
        Assert.Equal((0, MapQueries.CanceledByRequest), (first!.Value.Index, first.Value.Error));

        Assert.Equal(50_000, await store.MapSubmissions.SettleCanceledAsync(map.Id, default));
        Assert.Equal(0, await store.MapSubmissions.SettleCanceledAsync(map.Id, default));
        Assert.Equal(50_000L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_result WHERE map_id = $1 AND state = 3", map.Id));
        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_chunk WHERE map_id = $1 AND state <> 'canceled'", map.Id));
        Assert.Empty(await store.MapQueries.FindUnsettledCanceledMapsAsync(TimeSpan.Zero, 10, default));
    }
}
