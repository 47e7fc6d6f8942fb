using Jobs.Client;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>The .NET client's operator calls — retry, pause, resume, queues — against the real API.</summary>
public sealed class CSharpControlClientTests(SystemFixture system) : SystemTest(system)
{
    private JobsClient Client() => new(Fixture.ApiUrl);

    [Fact]
    public async Task A_failed_job_is_retried_by_id_or_handle_and_succeeds_with_its_attempts_going_on()
    {
        using var client = Client();
        var job = await client.ApplyAsyncAsync("debug.flaky", [3], options: new JobOptions(Retries: 0));
        Assert.Null(job.Warning);
        await Assert.ThrowsAsync<RemoteJobException>(() => job.GetAsync<int>(TimeSpan.FromSeconds(30)));

        var again = await client.RetryAsync(job.Id);
        Assert.Equal(job.Id, again.Id);
        Assert.Null(again.Warning);
        await Assert.ThrowsAsync<RemoteJobException>(() => again.GetAsync<int>(TimeSpan.FromSeconds(30))); // attempt 2 fails too

        Assert.True(await job.RetryAsync());
        Assert.Equal(3, await job.GetAsync<int>(TimeSpan.FromSeconds(30)));
        Assert.Equal(3, job.View["attempts"]!.GetValue<int>());
        Assert.False(await job.RetryAsync()); // succeeded: 409, nothing changes

        var refused = await Assert.ThrowsAsync<JobsRequestException>(() => client.RetryAsync(job.Id));
        Assert.Equal(409, refused.Status);
        Assert.Equal(404, (await Assert.ThrowsAsync<JobsRequestException>(() => client.RetryAsync(Guid.NewGuid()))).Status);
    }

    [Fact]
    public async Task Pause_resume_and_queues_show_what_waits_and_the_warning_of_an_unserved_queue()
    {
        using var client = Client();
        var queue = SystemFixture.PrivateQueue(); // declared (t_*), served by nothing

        var job = await client.ApplyAsyncAsync("noop", options: new JobOptions(Queue: queue));
        Assert.Contains($"No live worker serves queue '{queue}'", job.Warning);

        var paused = await client.PauseQueueAsync(queue);
        Assert.True(paused.Paused);
        Assert.NotNull(paused.PausedAt);
        Assert.Equal(1, paused.Depth);
        Assert.Empty(paused.Workers);
        Assert.NotNull(paused.Warning);

        var all = await client.QueuesAsync();
        Assert.True(all.Single(q => q.Name == queue).Paused);
        var defaults = all.Single(q => q.Name == "default");
        Assert.False(defaults.Paused);
        Assert.Equal(2, defaults.Workers.Count);
        Assert.Equal(4, defaults.Slots);
        Assert.Null(defaults.Warning);

        var resumed = await client.ResumeQueueAsync(queue);
        Assert.False(resumed.Paused);
        Assert.False((await client.QueueAsync(queue)).Paused);
        Assert.Equal(400, (await Assert.ThrowsAsync<JobsRequestException>(() => client.PauseQueueAsync("nobody-declares-this"))).Status);
    }
}
