using System.Globalization;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Jobs.Core.Idempotency;
using Jobs.Core.SingleJobs;
using Jobs.Tests.Infrastructure;
using Npgsql;

namespace Jobs.Tests.SingleJobs;

/// <summary>
/// The SQL of the job stores (<see cref="JobSubmissionStore"/>, <see cref="JobExecutionStore"/>, <see cref="JobQueries"/>) on real PostgreSQL, fact by fact, in milliseconds: what a submission stores,
/// who may claim a row, what a claim and a hand-back count, what cancel does in each state.
/// </summary>
[Collection(StoreCollection.Name)]
public sealed class JobStoreFacts(StoreFixture store) : IAsyncLifetime
{
    private const int MaxCrashes = 3;
    private static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    public Task InitializeAsync() => store.Database.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    private static NewJob Square(int x, DateTime? runAt = null) => new("math.square", $"[{x}]", "{}", "q", runAt, MaxRetries: 1);

    /// <summary>
    /// A stored row no Hangfire job carries yet, as a delayed submission or <c>POST /jobs/{id}/retry</c> leaves one (a
    /// submission due now comes with its own Hangfire job): the claim and outcome facts below play its Hangfire jobs.
    /// </summary>
    private async Task<JobRecord> UndispatchedAsync(NewJob job)
    {
        var (stored, _) = await store.JobSubmissions.InsertAsync(job, null, default);
        await store.Database.ScalarAsync<int>("UPDATE jobs.job SET hangfire_job_id = NULL, dispatched_at = NULL WHERE id = $1", stored.Id);
        return (await store.JobQueries.GetAsync(stored.Id, default))!;
    }

    private static IdempotencyClaim Claim(string key, string body, string scope = "") =>
        new(key, System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(body)), TimeSpan.FromHours(1), scope);

    [Fact]
    public async Task A_submission_is_stored_enqueued_with_its_fields_and_a_delayed_one_scheduled()
    {
        var (now, created) = await store.JobSubmissions.InsertAsync(Square(3), null, default);
        var (later, _) = await store.JobSubmissions.InsertAsync(Square(4, DateTime.UtcNow.AddHours(1)), null, default);

        Assert.True(created);
        Assert.Equal(("enqueued", "[3]", "q", 0, 1), (now.State, now.Args, now.Queue, now.Attempts, now.MaxRetries));
        // Due now: stored with its enqueued Hangfire job; delayed: stored alone, for the submitter to schedule.
        Assert.NotNull(now.HangfireJobId);
        Assert.Equal(("scheduled", (string?)null), (later.State, later.HangfireJobId));
        Assert.Equal(now, await store.JobQueries.GetAsync(now.Id, default));
    }

    [Fact]
    public async Task An_idempotency_key_returns_its_first_job_refuses_another_body_and_is_separate_per_scope()
    {
        var (first, created) = await store.JobSubmissions.InsertAsync(Square(5), Claim("k", "body-a", "key:a"), default);
        var (again, createdAgain) = await store.JobSubmissions.InsertAsync(Square(5), Claim("k", "body-a", "key:a"), default);
        var (otherTenant, createdForOther) = await store.JobSubmissions.InsertAsync(Square(5), Claim("k", "body-a", "key:b"), default);

        Assert.True(created);
        Assert.False(createdAgain);
        Assert.Equal(first.Id, again.Id);
        Assert.True(createdForOther);
        Assert.NotEqual(first.Id, otherTenant.Id);
        await Assert.ThrowsAsync<IdempotencyConflictException>(() => store.JobSubmissions.InsertAsync(Square(6), Claim("k", "body-b", "key:a"), default));
        Assert.Equal(2L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Jobs_that_arrive_together_are_stored_in_one_statement_in_the_order_given()
    {
        var stored = await store.JobSubmissions.InsertManyAsync([Square(1), Square(2), Square(3)], maxBatch: 100, default);

        Assert.Equal(["[1]", "[2]", "[3]"], stored.Select(j => j.Args));
        Assert.All(stored, j => Assert.Equal("enqueued", j.State));
        Assert.Equal(3, stored.Select(j => j.Id).Distinct().Count());
    }

    [Fact]
    public async Task Jobs_that_arrive_together_are_stored_with_their_hangfire_jobs_enqueued_in_the_same_statement()
    {
        // Three of queue "q" and one of "other", at most two rows per Hangfire job: three Hangfire jobs, each created
        // Enqueued as Hangfire's client would (state, queue row, no expiry), and the rows owned and dispatched already.
        NewJob[] jobs = [Square(1), Square(2), Square(3) with { Queue = "other" }, Square(4)];
        await using var listener = await store.DataSource.OpenConnectionAsync();
        var woken = 0;
        listener.Notification += (_, _) => Interlocked.Increment(ref woken);
        await using (var listen = new NpgsqlCommand("LISTEN new_job", listener)) await listen.ExecuteNonQueryAsync();

        var stored = await store.JobSubmissions.InsertManyAsync(jobs, maxBatch: 2, default);

        Assert.All(stored, j => Assert.NotNull(j.HangfireJobId));
        Assert.Equal(stored[0].HangfireJobId, stored[1].HangfireJobId);
        Assert.Equal(3, stored.Select(j => j.HangfireJobId).Distinct().Count());
        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE dispatched_at IS NULL"));
        var options = new PostgreSqlStorageOptions { PrepareSchemaIfNecessary = false };
        using var hangfire = new PostgreSqlStorage(new NpgsqlConnectionFactory(store.Database.ConnectionString, options), options).GetConnection();
        foreach (var owner in stored.Select(j => j.HangfireJobId!).Distinct())
        {
            var rows = stored.Where(j => j.HangfireJobId == owner).ToArray();
            Assert.Equal($"Enqueued|{rows[0].Queue}|Enqueued|1|t", await store.Database.ScalarAsync<string>(
                "SELECT concat_ws('|', j.statename, q.queue, s.name, (SELECT count(*) FROM hangfire.state WHERE jobid = j.id), j.expireat IS NULL) " +
                "FROM hangfire.job j JOIN hangfire.state s ON s.id = j.stateid JOIN hangfire.jobqueue q ON q.jobid = j.id WHERE j.id = $1",
                long.Parse(owner, CultureInfo.InvariantCulture)));
            // Hangfire reads it back as the call of JobRunner on exactly its rows, in order, in their queue.
            var data = hangfire.GetJobData(owner);
            Assert.Equal(rows[0].Queue, data.Job.Queue);
            Assert.Equal(rows.Select(r => r.Id), (Guid[])data.Job.Args[1]);
            Assert.Equal(rows[0].Queue, hangfire.GetStateData(owner).Data["Queue"]);
        }
        // One notification, at commit, wakes the workers.
        await using (var ping = new NpgsqlCommand("SELECT 1", listener)) await ping.ExecuteNonQueryAsync();
        await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref woken) >= 1), "new_job notified", 5);
    }

    [Fact]
    public async Task The_first_hangfire_job_to_claim_a_row_owns_it_and_a_duplicate_dispatch_gets_nothing()
    {
        var job = await UndispatchedAsync(Square(7));

        var claimed = await store.JobExecution.ClaimAsync([job.Id], "hf-1", "worker-a", MaxCrashes, default);
        var duplicate = await store.JobExecution.ClaimAsync([job.Id], "hf-2", "worker-b", MaxCrashes, default);

        Assert.Single(claimed);
        Assert.False(claimed[0].Resumed);
        Assert.Empty(duplicate);
        var row = (await store.JobQueries.GetAsync(job.Id, default))!;
        Assert.Equal(("processing", 1, "hf-1"), (row.State, row.Attempts, row.HangfireJobId));
    }

    [Fact]
    public async Task A_row_claimed_again_by_its_owner_after_its_worker_died_counts_a_crash_and_at_the_limit_no_attempt()
    {
        var job = await UndispatchedAsync(Square(8));
        await store.JobExecution.ClaimAsync([job.Id], "hf-1", "w", MaxCrashes, default);

        var runs = new List<ClaimedJob>();
        for (var rerun = 0; rerun < MaxCrashes; rerun++) runs.AddRange(await store.JobExecution.ClaimAsync([job.Id], "hf-1", "w", MaxCrashes, default));

        Assert.All(runs, r => Assert.True(r.Resumed));
        Assert.Equal([1, 2, 3], runs.Select(r => r.Crashes));
        // Three runs, then a claim that only quarantines: attempts counts the runs.
        Assert.Equal(MaxCrashes, (await store.JobQueries.GetAsync(job.Id, default))!.Attempts);
    }

    [Fact]
    public async Task A_hand_back_returns_unrun_rows_to_the_queue_without_an_attempt_and_only_for_their_owner()
    {
        var stored = await store.JobSubmissions.InsertManyAsync([Square(1), Square(2)], maxBatch: 100, default);
        Guid[] ids = [.. stored.Select(j => j.Id)];
        var owner = stored[0].HangfireJobId!; // created with the rows
        Assert.Equal(2, (await store.JobExecution.ClaimAsync(ids, owner, "w", MaxCrashes, default)).Count);

        Assert.Empty(await store.JobExecution.HandBackAsync(ids, "hf-other", MaxCrashes, default));
        var back = await store.JobExecution.HandBackAsync(ids, owner, MaxCrashes, default);

        Assert.Equal(2, back.Count);
        Assert.All(back, j => Assert.Equal(("enqueued", 0, (string?)null), (j.State, j.Attempts, j.HangfireJobId)));
    }

    [Fact]
    public async Task An_outcome_is_written_only_by_the_owner_of_a_processing_row()
    {
        var job = await UndispatchedAsync(Square(9));
        await store.JobExecution.ClaimAsync([job.Id], "hf-1", "w", MaxCrashes, default);

        Assert.Empty(await store.JobExecution.FinishAsync("hf-2", [new JobOutcome(job.Id, JobStates.Succeeded, "81")], Retention, default));
        Assert.Equal([job.Id], await store.JobExecution.FinishAsync("hf-1", [new JobOutcome(job.Id, JobStates.Succeeded, "81")], Retention, default));
        Assert.Empty(await store.JobExecution.FinishAsync("hf-1", [new JobOutcome(job.Id, JobStates.Failed, """{"type":"x"}""")], Retention, default));

        var row = (await store.JobQueries.GetAsync(job.Id, default))!;
        Assert.Equal(("succeeded", "81"), (row.State, row.Result));
        Assert.NotNull(row.FinishedAt);
    }

    [Fact]
    public async Task Cancel_ends_a_waiting_job_at_once_marks_a_running_one_and_refuses_a_finished_one()
    {
        var waiting = await UndispatchedAsync(Square(1));
        var running = await UndispatchedAsync(Square(2));
        await store.JobExecution.ClaimAsync([running.Id], "hf-r", "w", MaxCrashes, default);
        const string error = """{"type":"Canceled","message":"by request","stackTrace":""}""";

        var ofWaiting = await store.JobSubmissions.CancelAsync(waiting.Id, error, Retention, default);
        var ofRunning = await store.JobSubmissions.CancelAsync(running.Id, error, Retention, default);
        var again = await store.JobSubmissions.CancelAsync(waiting.Id, error, Retention, default);
        var unknown = await store.JobSubmissions.CancelAsync(Guid.NewGuid(), error, Retention, default);

        Assert.Equal(("enqueued", "canceled"), (ofWaiting!.Before, ofWaiting.After));
        Assert.Equal(("processing", "processing"), (ofRunning!.Before, ofRunning.After));
        Assert.True(await store.JobExecution.IsCancelRequestedAsync(running.Id, default));
        Assert.Equal(("canceled", (string?)null), (again!.Before, again.After)); // the API answers 409
        Assert.Null(unknown);
    }

    [Fact]
    public async Task A_stored_row_without_a_hangfire_job_is_found_by_the_rescuer_only_after_the_grace_period()
    {
        var job = await UndispatchedAsync(Square(1));

        Assert.Empty(await store.JobQueries.FindUndispatchedAsync(TimeSpan.FromMinutes(1), 10, default));
        Assert.Equal([job.Id], (await store.JobQueries.FindUndispatchedAsync(TimeSpan.Zero, 10, default)).Select(j => j.Id));
        await store.JobSubmissions.MarkDispatchedAsync([job.Id], ["hf-1"], default);
        Assert.Empty(await store.JobQueries.FindUndispatchedAsync(TimeSpan.Zero, 10, default));
    }

    [Fact]
    public async Task A_finished_jobs_callback_nobody_queued_is_found_with_its_queue_until_it_is_claimed()
    {
        var job = await UndispatchedAsync(Square(2) with { CallbackUrl = "http://127.0.0.1:1/hook" });
        var plain = await UndispatchedAsync(Square(3));
        foreach (var id in new[] { job.Id, plain.Id })
        {
            Assert.Single(await store.JobExecution.ClaimAsync([id], "hf-" + id, "w", MaxCrashes, default));
            await store.JobExecution.FinishAsync("hf-" + id, [new JobOutcome(id, JobStates.Succeeded, "4")], Retention, default);
        }

        Assert.Empty(await store.JobCallbacks.FindUnsentCallbacksAsync(TimeSpan.FromMinutes(1), 10, default));
        Assert.Equal([(job.Id, "q")], await store.JobCallbacks.FindUnsentCallbacksAsync(TimeSpan.Zero, 10, default));
        Assert.True(await store.JobCallbacks.ClaimCallbackAsync(job.Id, Sender(job.Id), default));
        Assert.Empty(await store.JobCallbacks.FindUnsentCallbacksAsync(TimeSpan.Zero, 10, default));
    }

    [Fact]
    public async Task A_callback_is_claimed_with_its_senders_hangfire_job_or_not_at_all()
    {
        var job = await UndispatchedAsync(Square(2) with { CallbackUrl = "http://127.0.0.1:1/hook" });
        Assert.Single(await store.JobExecution.ClaimAsync([job.Id], "hf-cb", "w", MaxCrashes, default));
        await store.JobExecution.FinishAsync("hf-cb", [new JobOutcome(job.Id, JobStates.Succeeded, "4")], Retention, default);
        async Task<long> SendersAsync() => await store.Database.ScalarAsync<long>(
            "SELECT count(*) FROM hangfire.job j JOIN hangfire.jobqueue q ON q.jobid = j.id WHERE j.statename = 'Enqueued' AND q.queue = 'q' AND j.invocationdata::text LIKE '%CallbackSender%'");
        var before = await SendersAsync();

        // The statement fails after the claim's UPDATE (a sender PostgreSQL refuses): nothing of it stays. Taken in a
        // commit of its own, the callback stayed "pending" with no sender, and no one ever sent it.
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => store.JobCallbacks.ClaimCallbackAsync(job.Id, Sender(job.Id) with { InvocationData = "not json" }, default));
        Assert.Null(await store.Database.ScalarAsync<string>("SELECT callback::text FROM jobs.job WHERE id = $1", job.Id));
        Assert.Equal([(job.Id, "q")], await store.JobCallbacks.FindUnsentCallbacksAsync(TimeSpan.Zero, 10, default));

        Assert.True(await store.JobCallbacks.ClaimCallbackAsync(job.Id, Sender(job.Id), default));
        Assert.False(await store.JobCallbacks.ClaimCallbackAsync(job.Id, Sender(job.Id), default)); // once
        Assert.Equal(before + 1, await SendersAsync());
    }

    private static Jobs.Core.Queue.EnqueuedHangfireJobs.Row Sender(Guid id) => Jobs.Core.Queue.EnqueuedHangfireJobs.For(
        Hangfire.Common.Job.FromExpression<Jobs.Core.Callbacks.CallbackSender>(s => s.SendAsync(id, null, CancellationToken.None), "q"));

    [Fact]
    public async Task A_run_whose_job_was_claimed_again_can_no_longer_write_its_outcome_progress_or_hand_back()
    {
        // The same Hangfire job runs twice at once: its first worker was cut off, the job given back and fetched again.
        var job = await UndispatchedAsync(Square(5));
        Guid first = Guid.CreateVersion7(), second = Guid.CreateVersion7();
        Assert.Single(await store.JobExecution.ClaimAsync([job.Id], "hf-5", "cut-off", MaxCrashes, default, first));
        var again = Assert.Single(await store.JobExecution.ClaimAsync([job.Id], "hf-5", "rescuer", MaxCrashes, default, second));
        Assert.True(again.Resumed);

        await store.JobExecution.ReportProgressAsync(job.Id, "hf-5", """{"fraction":0.9}""", default, first);
        Assert.Empty(await store.JobExecution.HandBackAsync([job.Id], "hf-5", MaxCrashes, default, first));
        Assert.Empty(await store.JobExecution.FinishAsync("hf-5", [new JobOutcome(job.Id, JobStates.Enqueued, null)], Retention, default, first));
        Assert.Empty(await store.JobExecution.FinishAsync("hf-5", [new JobOutcome(job.Id, JobStates.Succeeded, "1")], Retention, default, first));
        var row = await store.JobQueries.GetAsync(job.Id, default);
        Assert.Equal(("processing", (string?)null), (row!.State, row.Progress));

        Assert.Equal([job.Id], await store.JobExecution.FinishAsync("hf-5", [new JobOutcome(job.Id, JobStates.Succeeded, "25")], Retention, default, second));
        Assert.Equal(("succeeded", "25"), ((await store.JobQueries.GetAsync(job.Id, default))!.State, (await store.JobQueries.GetAsync(job.Id, default))!.Result));
    }
}
