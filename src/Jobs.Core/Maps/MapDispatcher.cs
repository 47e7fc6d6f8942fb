using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Jobs.Core.Queue;

namespace Jobs.Core.Maps;

/// <summary>Creates the Hangfire job that carries one chunk of a map to a worker serving its queue.</summary>
public sealed class MapDispatcher(IBackgroundJobClient client)
{
    /// <summary>Enqueues the Hangfire job of one chunk of a map; returns its id.</summary>
    public string Dispatch(Guid mapId, int chunk, string function, string queue, int firstIndex, int endIndex)
    {
        var call = $"{function} map {mapId.ToString()[^12..]} items {firstIndex}–{endIndex - 1}";
        var hangfireJob = Job.FromExpression<Executor>(executor => executor.RunAsync(call, mapId, chunk, null, CancellationToken.None), queue);
        return client.Create(hangfireJob, new EnqueuedState(queue));
    }
}
