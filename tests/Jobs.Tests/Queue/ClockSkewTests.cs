using System.Net;
using System.Text;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// Workers whose clocks are wrong (issue 26), 10 minutes ahead or behind (<see cref="ClockShift"/>): what is due is
/// decided by PostgreSQL's clock, so a delayed job starts when it is due whatever the clock of the worker whose
/// Hangfire scheduler enqueues it. Before Hangfire's schedulers asked the storage for the time, the worker 10 minutes
/// ahead started the job 0.6 s after its submission, 7.4 s early. (The one behind is covered by the fixture's other
/// workers too, whose schedulers enqueue any due job: it shows that no job waits for the slow clock.)
/// The API and the workers decide the rest by PostgreSQL's clock too (<c>DatabaseClock</c>): a delay asked of an API
/// 10 minutes ahead started the job 10 minutes late (and one behind, at once); a retry a worker 10 minutes ahead
/// scheduled ran 10 minutes late.
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

        var waited = await StartedAfterSubmissionAsync(Http, id);
        output.WriteLine($"worker clock {skewSeconds:+0;-0} s: started {waited:F1} s after submission (due after 8 s)");
        Assert.InRange(waited, 7.5, 20);
    }

    [Theory]
    [InlineData(600)]
    [InlineData(-600)]
    public async Task A_delay_asked_of_an_api_whose_clock_is_wrong_counts_from_postgresqls_clock(int skewSeconds)
    {
        var queue = SystemFixture.PrivateQueue();
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        await using var api = await Fixture.StartReadyApiAsync($"api-skewed{skewSeconds:+0;-0}", url, ClockShift.By(skewSeconds));
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        await using var worker = Fixture.StartWorker("on-time", [queue]);
        var id = await http.SubmitOkAsync(new { function = "math.square", args = new[] { 4 }, queue, delaySeconds = 6 });

        var waited = await StartedAfterSubmissionAsync(http, id);
        output.WriteLine($"API clock {skewSeconds:+0;-0} s: started {waited:F1} s after submission (due after 6 s)");
        Assert.InRange(waited, 5.5, 20);
    }

    [Theory]
    [InlineData(600)]
    [InlineData(-600)]
    public async Task A_retry_scheduled_by_a_worker_whose_clock_is_wrong_runs_after_its_backoff_by_postgresqls_clock(int skewSeconds)
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = Fixture.StartWorker($"skewed{skewSeconds:+0;-0}", [queue], environment: ClockShift.By(skewSeconds));
        var id = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "again" }, retries = 1, queue });

        // Backoff 0.2 s (the fixture's Jobs:RetryBaseDelay): the retry is due at once, whatever the worker's clock says.
        var job = await Http.WaitForJobAsync(id, 40);
        Assert.Equal(("failed", 2), (job["state"]!.GetValue<string>(), job["attempts"]!.GetValue<int>()));
        var (created, finished) = (await Database.ScalarAsync<DateTime>("SELECT created_at FROM jobs.job WHERE id = $1", id),
            await Database.ScalarAsync<DateTime>("SELECT finished_at FROM jobs.job WHERE id = $1", id));
        output.WriteLine($"worker clock {skewSeconds:+0;-0} s: the retry ended {(finished - created).TotalSeconds:F1} s after submission");
    }

    [Theory]
    [InlineData(600)]
    [InlineData(0)]
    public async Task A_schedule_fires_once_per_due_time_with_workers_ten_minutes_ahead_and_behind(int skewSeconds)
    {
        var queue = SystemFixture.PrivateQueue();
        await using var ahead = Fixture.StartWorker("ahead", [queue], environment: skewSeconds == 0 ? null : ClockShift.By(skewSeconds));
        await using var behind = Fixture.StartWorker("behind", [queue], environment: skewSeconds == 0 ? null : ClockShift.By(-skewSeconds));
        var name = "skew-" + queue;
        using var body = new StringContent($$"""{ "name": "{{name}}", "cron": "*/2 * * * * *", "function": "math.square", "args": [2], "queue": "{{queue}}" }""",
            Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.OK, (await Http.PostAsync("/schedules", body)).StatusCode);
        await Task.Delay(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.NoContent, (await Http.DeleteAsync($"/schedules/{name}")).StatusCode);

        // Each fire is a Hangfire job of the schedule's recurring job, with the due time it fired for ("Time"); each
        // submits one job.
        var dueTimes = new List<long>();
        await using (var connection = new Npgsql.NpgsqlConnection(Database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("""
                SELECT t.value::bigint FROM hangfire.jobparameter r JOIN hangfire.jobparameter t ON t.jobid = r.jobid AND t.name = 'Time'
                WHERE r.name = 'RecurringJobId' AND r.value = $1 ORDER BY t.value::bigint
                """, connection) { Parameters = { new() { Value = $"\"{name}\"" } } };
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync()) dueTimes.Add(reader.GetInt64(0));
        }
        var submitted = await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE schedule_name = $1", name);
        output.WriteLine($"workers {skewSeconds:+0;-0} s and {-skewSeconds:+0;-0} s: {dueTimes.Count} fires in 20 s for due times (s) {string.Join(", ", dueTimes.Select(t => t % 100))}; {submitted} jobs submitted");
        // Ten due times in 20 s (and one just before the schedule was made, which Hangfire fires too; a fire it finds late
        // it makes at once, for the time it runs — Hangfire's "relaxed" misfire handling): one fire for each —
        // a scheduler reading a clock 10 minutes ahead fired at every poll — and fires keep coming (none waits for a
        // clock 10 minutes behind); each fire submits its job once.
        Assert.Equal(dueTimes.Count, dueTimes.Distinct().Count());
        Assert.InRange(dueTimes.Count, 5, 12);
        Assert.Equal(dueTimes.Count, submitted);
    }

    /// <summary>Waits for the job to succeed; how long after its submission it started, by PostgreSQL's clock, in seconds.</summary>
    private async Task<double> StartedAfterSubmissionAsync(HttpClient http, Guid id)
    {
        Assert.Equal("succeeded", (await http.WaitForJobAsync(id, 40))["state"]!.GetValue<string>());
        return (await Database.ScalarAsync<DateTime>("SELECT started_at FROM jobs.job WHERE id = $1", id)
            - await Database.ScalarAsync<DateTime>("SELECT created_at FROM jobs.job WHERE id = $1", id)).TotalSeconds;
    }
}
