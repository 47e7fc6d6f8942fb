using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// Workers whose clocks are wrong (issue 26), 10 minutes ahead or behind (<see cref="ClockShift"/>): what is due is
/// decided by PostgreSQL's clock, so a delayed job starts when it is due whatever the clock of the worker whose
/// Hangfire scheduler enqueues it. Before Hangfire's schedulers asked the storage for the time, the worker 10 minutes
/// ahead started the job 0.6 s after its submission, 7.4 s early. (The one behind is covered by the fixture's other
/// workers too, whose schedulers enqueue any due job: it shows that no job waits for the slow clock.)
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class ClockSkewTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    [Theory]
    [InlineData(600)]
    [InlineData(-600)]
    public async Task A_delayed_job_starts_when_it_is_due_by_postgresqls_clock_whatever_the_workers_clock(int skewSeconds)
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = Fixture.StartWorker($"skewed{skewSeconds:+0;-0}", [queue], environment: ClockShift.By(skewSeconds));
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 4 }, queue, delaySeconds = 8 });

        var job = await Http.WaitForJobAsync(id, 40);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        var (created, started) = (await Database.ScalarAsync<DateTime>("SELECT created_at FROM jobs.job WHERE id = $1", id),
            await Database.ScalarAsync<DateTime>("SELECT started_at FROM jobs.job WHERE id = $1", id));
        output.WriteLine($"worker clock {skewSeconds:+0;-0} s: started {(started - created).TotalSeconds:F1} s after submission (due after 8 s)");
        Assert.InRange((started - created).TotalSeconds, 7.5, 20);
    }
}
