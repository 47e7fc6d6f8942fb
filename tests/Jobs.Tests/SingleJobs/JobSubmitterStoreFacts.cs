using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Jobs.Core.Telemetry;
using Jobs.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Jobs.Tests.SingleJobs;

/// <summary>
/// The submitter's round loop on real PostgreSQL and Hangfire's real client: it is owned (it used to be a fire-and-forget
/// loop in a singleton that nothing stopped), so disposing the submitter while submissions pour in ends cleanly — every
/// submission either stored and dispatched or refused as "closed", none left hanging, and none after.
/// </summary>
[Collection(StoreCollection.Name)]
public sealed class JobSubmitterStoreFacts(StoreFixture store) : IAsyncLifetime
{
    public Task InitializeAsync() => store.Database.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Disposed_mid_burst_every_submission_is_stored_and_dispatched_or_refused_and_none_hangs()
    {
        var options = HangfireSetup.StorageOptions(new WorkerOptions());
        var storage = new PostgreSqlStorage(new NpgsqlConnectionFactory(store.Database.ConnectionString, options), options);
        var submitter = new JobSubmitter(store.JobSubmissions, new JobDispatcher(new BackgroundJobClient(storage), store.Clock), new JobsMetrics(),
            store.Clock, Options.Create(new JobsOptions()), NullLogger<JobSubmitter>.Instance);

        var submissions = Enumerable.Range(0, 400).Select(i => Task.Run(async () =>
        {
            await Task.Delay(i % 40);
            return await submitter.SubmitAsync(new NewJob("math.square", $"[{i}]", "{}", "default"), null, default);
        })).ToArray();
        await Task.Delay(15);
        await submitter.DisposeAsync();
        var ended = Task.WhenAll(submissions.Select(s => s.ContinueWith(_ => { }, TaskScheduler.Default)));
        Assert.Same(ended, await Task.WhenAny(ended, Task.Delay(TimeSpan.FromSeconds(20))));

        var stored = submissions.Where(s => s.IsCompletedSuccessfully).Select(s => s.Result.Job.Id).ToHashSet();
        foreach (var refused in submissions.Where(s => !s.IsCompletedSuccessfully))
            Assert.Contains("closed", refused.Exception!.InnerException!.Message);
        Assert.Equal(stored.Count, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(0L, await store.Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job WHERE hangfire_job_id IS NULL OR dispatched_at IS NULL"));
        var late = await Assert.ThrowsAsync<InvalidOperationException>(() => submitter.SubmitAsync(new NewJob("noop", "[]", "{}", "default"), null, default));
        Assert.Contains("closed", late.Message);
    }
}
