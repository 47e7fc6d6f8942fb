using Hangfire;
using Jobs.Api.Security;
using Jobs.Core.SingleJobs;

namespace Jobs.Api.Pool;

internal sealed record PoolServer(string Name, int Workers, IReadOnlyList<string> Queues, DateTime StartedAt, DateTime? Heartbeat);

internal sealed record PoolQueue(string Name, long Scheduled, long Enqueued, long Processing);

/// <summary>GET /pool: the pool as a whole — who serves, with how many slots, and what waits.</summary>
internal sealed record PoolView(int Slots, IReadOnlyList<PoolServer> Servers, IReadOnlyList<PoolQueue> Queues, IReadOnlyDictionary<string, long> States);

internal static class PoolApi
{
    public static IEndpointRouteBuilder MapPoolApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/pool", async (JobStorage storage, JobQueries jobs, CancellationToken ct) =>
            {
                var servers = storage.GetMonitoringApi().Servers()
                    .Select(s => new PoolServer(s.Name, s.WorkersCount, s.Queues.ToList(), s.StartedAt, s.Heartbeat))
                    .OrderBy(s => s.Name, StringComparer.Ordinal).ToList();

                var states = JobStates.All.ToDictionary(s => s, _ => 0L);
                var queues = new Dictionary<string, (long Scheduled, long Enqueued, long Processing)>();
                foreach (var (queue, state, count) in await jobs.CountByQueueAndStateAsync(ct))
                {
                    states[state] += count;
                    var q = queues.GetValueOrDefault(queue);
                    queues[queue] = state switch
                    {
                        "scheduled" => q with { Scheduled = q.Scheduled + count },
                        "enqueued" => q with { Enqueued = q.Enqueued + count },
                        "processing" => q with { Processing = q.Processing + count },
                        _ => q,
                    };
                }
                foreach (var served in servers.SelectMany(s => s.Queues)) queues.TryAdd(served, default);
                return TypedResults.Ok(new PoolView(servers.Sum(s => s.Workers), servers,
                    queues.OrderBy(q => q.Key, StringComparer.Ordinal)
                        .Select(q => new PoolQueue(q.Key, q.Value.Scheduled, q.Value.Enqueued, q.Value.Processing)).ToList(),
                    states));
            })
            .RequireApiKey()
            .WithTags("Pool")
            .WithName("GetPool")
            .WithSummary("Live worker servers with their slots and queues, queue depths, and job counts by state");
        return app;
    }
}
