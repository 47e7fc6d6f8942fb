using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Pool;

public sealed class PoolTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task Pool_shows_servers_slots_queues_and_counts_by_state()
    {
        var queue = SystemFixture.PrivateQueue();
        await Http.SubmitOkAsync(new { function = "noop", queue });
        await Http.SubmitOkAsync(new { function = "noop", queue });

        var pool = await (await Http.GetAsync("/pool")).JsonAsync();

        var servers = pool["servers"]!.AsArray();
        Assert.True(servers.Count(s => s!["queues"]!.AsArray().Any(q => q!.GetValue<string>() == "default")) >= 2);
        Assert.True(pool["slots"]!.GetValue<int>() >= 4);
        var waiting = pool["queues"]!.AsArray().Single(q => q!["name"]!.GetValue<string>() == queue)!;
        Assert.Equal(2, waiting["enqueued"]!.GetValue<long>());
        Assert.Equal(2, pool["states"]!["enqueued"]!.GetValue<long>());
    }
}
