using Jobs.Core.Idempotency;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Maps;

/// <summary>
/// Stores a map and hands its first window of chunks to Hangfire, as <see cref="SingleJobs.JobSubmitter"/> does for jobs:
/// stored means accepted. From the commit on the map completes even if this process dies or PostgreSQL goes away — the
/// workers' rescuer dispatches the chunks given their turn after Jobs:DispatchGracePeriod. Only the first window is
/// handed over now (<see cref="MapWindow"/>); each chunk that ends hands the next one over.
/// </summary>
public sealed class MapSubmitter(MapSubmissionStore maps, MapWindow window, JobsMetrics metrics, ILogger<MapSubmitter> logger)
{
    /// <summary>Stores <paramref name="map"/> with its items (or returns the map its Idempotency-Key already made) and dispatches its first turns.</summary>
    public async Task<(MapRecord Map, bool Created)> SubmitAsync(NewMap map, IReadOnlyList<string> itemArgs, IReadOnlyList<string?>? itemTuples,
        IdempotencyClaim? claim, CancellationToken ct)
    {
        var (stored, created) = await maps.InsertAsync(map, itemArgs, claim, ct, itemTuples);
        if (!created) return (stored, false);
        metrics.Submitted(map.Function, map.Queue, itemArgs.Count); // each item counts as a job, as the workers count them
        try
        {
            await window.DispatchAsync(MapSubmissionStore.FirstTurns(stored, map.Window), CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not hand map {MapId}'s chunks to Hangfire; the rescuer dispatches them", stored.Id);
        }
        return (stored, true);
    }
}
