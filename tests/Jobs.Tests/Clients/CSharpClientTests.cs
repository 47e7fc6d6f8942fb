using Jobs.Client;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>The typed .NET client (src/Jobs.Client) against the real API.</summary>
public sealed class CSharpClientTests(SystemFixture system) : SystemTest(system)
{
    private JobsClient Client() => new(Fixture.ApiUrl);

    [Fact]
    public async Task Apply_and_apply_async_return_typed_results()
    {
        using var client = Client();
        Assert.Equal(49, await client.ApplyAsync<int>("math.square", [7]));
        var job = await client.ApplyAsyncAsync("math.pow", [2], new Dictionary<string, object?> { ["y"] = 10 });
        Assert.Equal(1024.0, await job.GetAsync<double>(TimeSpan.FromSeconds(30)));
        Assert.True(job.Ready);
        Assert.True(job.Successful);
    }

    [Fact]
    public async Task A_remote_failure_is_a_typed_exception_with_the_remote_type_message_and_stack()
    {
        using var client = Client();
        var job = await client.ApplyAsyncAsync("debug.fail", ["the disk is full"]);
        var e = await Assert.ThrowsAsync<RemoteJobException>(() => job.GetAsync<object>(TimeSpan.FromSeconds(30)));
        Assert.Equal("Jobs.Core.Functions.BuiltIn.DebugFailureException", e.RemoteType);
        Assert.Equal("the disk is full", e.RemoteMessage);
        Assert.Contains("DebugFunctions.Fail", e.RemoteStackTrace);
        Assert.False(job.Successful);
    }

    [Fact]
    public async Task Get_times_out_wait_does_not_and_cancel_stops_the_job()
    {
        using var client = Client();
        var job = await client.ApplyAsyncAsync("time.sleep", [30]);
        await Assert.ThrowsAsync<TimeoutException>(() => job.GetAsync<double>(TimeSpan.FromSeconds(1)));
        await job.WaitAsync(TimeSpan.FromMilliseconds(500));
        Assert.False(job.Ready);
        Assert.True(await job.CancelAsync());
        await job.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("canceled", job.View["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Map_starmap_and_imap_keep_their_orders_and_a_failing_item_names_its_index()
    {
        using var client = Client();
        Assert.Equal(Enumerable.Range(0, 50).Select(x => x * x), await client.MapAsync<int>("math.square", Enumerable.Range(0, 50).Cast<object?>()));
        Assert.Equal([8.0, 9.0], await client.MapAsync<double>("math.pow", [new[] { 2, 3 }, new[] { 3, 2 }], star: true));

        var ordered = new List<int>();
        await foreach (var r in client.ImapAsync<int>("math.square", Enumerable.Range(0, 20).Cast<object?>(), chunksize: 3)) ordered.Add(r);
        Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), ordered);
        var unordered = new List<int>();
        await foreach (var r in client.ImapAsync<int>("math.square", Enumerable.Range(0, 20).Cast<object?>(), ordered: false)) unordered.Add(r);
        Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), unordered.Order());

        var e = await Assert.ThrowsAsync<RemoteJobException>(() => client.MapAsync<object>("debug.fail", ["first", "second"]));
        Assert.Equal(0, e.Index);
        Assert.Equal("first", e.RemoteMessage);
    }

    [Fact]
    public async Task A_refused_request_carries_its_problem()
    {
        using var client = Client();
        var e = await Assert.ThrowsAsync<JobsRequestException>(() => client.ApplyAsyncAsync("no.such.function"));
        Assert.Equal(404, e.Status);
        Assert.Contains("no.such.function", e.Detail);
    }
}
