using Jobs.Core.Maps;
using Jobs.Tests.Infrastructure;


namespace Jobs.Tests.Maps;

/// <summary>
/// The SQL of the map stores (<see cref="MapSubmissionStore"/>, <see cref="MapExecutionStore"/>, <see cref="MapQueries"/>) on real PostgreSQL: a map is stored with its chunks and items, a chunk is owned
/// by the first Hangfire job to claim it, outcomes count once and number themselves in commit order, and the last
/// chunk to end finishes the map.
/// </summary>
[Collection(StoreCollection.Name)]
public sealed class MapStoreFacts(StoreFixture store) : IAsyncLifetime
{
    private static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    public Task InitializeAsync() => store.Database.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<MapRecord> SquaresAsync(int items, int chunksize)
    {
        var (map, created) = await store.MapSubmissions.InsertAsync(new NewMap("math.square", "{}", Star: false, "q", chunksize, Window: 100),
            [.. Enumerable.Range(0, items).Select(i => $"[{i}]")], null, default);
        Assert.True(created);
        return map;
    }

    [Fact]
    public async Task A_map_is_stored_with_its_items_and_ceil_items_over_chunksize_chunks()
    {
        var map = await SquaresAsync(items: 10, chunksize: 4);

        Assert.Equal((10, 4, 3, "enqueued", 10), (map.Total, map.Chunksize, map.Chunks, map.State, map.Pending));
        Assert.Equal(10L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map_item WHERE map_id = $1", map.Id));
        Assert.Equal(3, (await store.MapQueries.FindUndispatchedChunksAsync(TimeSpan.Zero, 10, default)).Count(c => c.MapId == map.Id));
        var last = (await store.MapQueries.FindUndispatchedChunksAsync(TimeSpan.Zero, 10, default)).Single(c => c.Chunk == 2);
        Assert.Equal((8, 10), (last.FirstIndex, last.EndIndex));
    }

    [Fact]
    public async Task The_first_hangfire_job_to_claim_a_chunk_owns_it_and_its_claim_starts_the_map()
    {
        var map = await SquaresAsync(items: 4, chunksize: 2);

        var claimed = await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-1", "w", default);
        var duplicate = await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-2", "w", default);

        Assert.NotNull(claimed);
        Assert.Equal((0, 2, 1, 0), (claimed.FirstIndex, claimed.EndIndex, claimed.Attempts, claimed.Crashes));
        Assert.Null(duplicate);
        Assert.Equal("processing", (await store.MapQueries.GetAsync(map.Id, default))!.State);
        Assert.Equal([(0, "[0]"), (1, "[1]")], (await store.MapExecution.PendingItemsAsync(map.Id, 0, 2, default)).Select(i => (i.Index, i.Args)));
    }

    [Fact]
    public async Task An_outcome_counts_once_and_outcomes_number_themselves_in_the_order_they_commit()
    {
        var map = await SquaresAsync(items: 3, chunksize: 3);
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-1", "w", default);

        await store.MapExecution.FlushAsync(map.Id, [2], [MapItemStates.Succeeded], ["4"], [null], default);
        await store.MapExecution.FlushAsync(map.Id, [0, 2], [MapItemStates.Succeeded, MapItemStates.Failed], ["0", null], [null, """{"type":"x"}"""], default);

        var after = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal((2, 0, 1), (after.Succeeded, after.Failed, after.Pending)); // item 2's second outcome did not count
        var (byCompletion, heldBack) = await store.MapQueries.FinishedAfterAsync(map.Id, (0, -1), 10, default);
        Assert.False(heldBack);
        Assert.Equal([2, 0], byCompletion.Select(o => o.Index));
        Assert.True(byCompletion[0].Xid < byCompletion[1].Xid);
        Assert.Equal([(1, "[1]")], (await store.MapExecution.PendingItemsAsync(map.Id, 0, 3, default)).Select(i => (i.Index, i.Args))); // a re-run does only what is left
    }

    [Fact]
    public async Task The_last_chunk_to_end_finishes_the_map_failed_if_any_item_failed()
    {
        var map = await SquaresAsync(items: 2, chunksize: 1);
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-0", "w", default);
        await store.MapExecution.ClaimChunkAsync(map.Id, 1, "hf-1", "w", default);
        await store.MapExecution.FlushAsync(map.Id, [0], [MapItemStates.Succeeded], ["0"], [null], default);
        await store.MapExecution.FinishChunkAsync(map.Id, 0, "hf-0", "done", Retention, default);

        Assert.Equal("processing", (await store.MapQueries.GetAsync(map.Id, default))!.State);

        await store.MapExecution.FlushAsync(map.Id, [1], [MapItemStates.Failed], [null], ["""{"type":"ValueError"}"""], default);
        await store.MapExecution.FinishChunkAsync(map.Id, 1, "hf-1", "done", Retention, default);

        var done = (await store.MapQueries.GetAsync(map.Id, default))!;
        Assert.Equal("failed", done.State);
        Assert.NotNull(done.FinishedAt);
        Assert.Equal(1, (await store.MapQueries.FirstFailureAsync(map.Id, default))!.Value.Index);
    }

    [Fact]
    public async Task A_released_chunk_goes_back_uncounted_and_a_crashed_one_is_re_claimed_with_a_crash()
    {
        var map = await SquaresAsync(items: 2, chunksize: 2);
        await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-1", "w", default);
        await store.MapExecution.ReleaseChunkAsync(map.Id, 0, "hf-1", default);

        var afterRelease = await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-1", "w", default);
        var afterCrash = await store.MapExecution.ClaimChunkAsync(map.Id, 0, "hf-1", "w", default); // still 'processing': its worker died

        Assert.Equal(0, afterRelease!.Crashes);
        Assert.Equal(1, afterCrash!.Crashes);
    }
}
