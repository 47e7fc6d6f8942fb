using Jobs.Core.Configuration;
using Microsoft.Extensions.Configuration;

namespace Jobs.Tests.Configuration;

/// <summary>
/// Which queues a worker serves, bound as the worker binds them (appsettings.json, then environment variables). The
/// binder appends to an initialised array: a worker for "critical" alone served ["default", "critical"].
/// </summary>
public sealed class WorkerQueuesFacts
{
    private static string[] Served(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: false)
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        return configuration.Read<WorkerOptions>(WorkerOptions.Section).EffectiveQueues;
    }

    [Fact]
    public void The_shipped_settings_serve_default_once() => Assert.Equal(["default"], Served());

    [Fact]
    public void A_worker_configured_for_other_queues_serves_those_alone_in_their_order() =>
        Assert.Equal(["critical", "bulk"], Served(("Worker:Queues:0", "critical"), ("Worker:Queues:1", "bulk")));

    [Fact]
    public void No_queue_configured_at_all_serves_default()
    {
        var configuration = new ConfigurationBuilder().Build();
        Assert.Equal(["default"], configuration.Read<WorkerOptions>(WorkerOptions.Section).EffectiveQueues);
    }
}
