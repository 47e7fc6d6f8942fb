using Jobs.Core.Maps;

namespace Jobs.Tests.Infrastructure;

/// <summary>One chunk's steps for the map store facts, as a run of a single chunk takes them.</summary>
public static class MapExecutionSteps
{
    /// <summary>A graceful stop: the chunk goes back to 'enqueued' (uncounted); its re-run does the items left.</summary>
    public static Task ReleaseChunkAsync(this MapExecutionStore store, Guid mapId, int chunk, string hangfireJobId, CancellationToken ct) =>
        store.ReleaseRunAsync(mapId, chunk, chunk + 1, hangfireJobId, ct);

    /// <summary>Ends one chunk and gives its turn to the map's next chunks (<see cref="MapExecutionStore.FinishRunAsync"/> without carrying on).</summary>
    public static async Task<IReadOnlyList<UndispatchedChunk>> FinishChunkAsync(this MapExecutionStore store, Guid mapId, int chunk, string hangfireJobId, string state,
        TimeSpan retention, CancellationToken ct) =>
        (await store.FinishRunAsync(mapId, chunk, chunk + 1, hangfireJobId, "", state, retention, carryItems: 0, ct)).Next;
}
