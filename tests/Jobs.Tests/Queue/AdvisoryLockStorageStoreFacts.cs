using System.Diagnostics;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Hangfire.States;
using Hangfire.Storage;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Queue;
using Jobs.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// Hangfire's distributed locks as PostgreSQL advisory locks (<see cref="AdvisoryLockStorage"/>, issue 24): what a lock
/// must do (exclude, re-enter on its connection, time out, end with its holder's session), and what a lone job's state
/// changes cost through it against Hangfire.PostgreSql's lock table, counted by PostgreSQL (pg_stat_statements).
/// </summary>
[Collection(QueueCollection.Name)]
public sealed class AdvisoryLockStorageStoreFacts(QueueFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Queue = "locks";

    public Task InitializeAsync()
    {
        _worker = NpgsqlDataSource.Create(ConnectionString);
        _dataSources.Add(_worker);
        return fixture.ResetAsync();
    }
    public async Task DisposeAsync()
    {
        foreach (var dataSource in _dataSources) await dataSource.DisposeAsync();
    }

    /// <summary>As a worker process connects (HangfireSetup, AddJobsDatabase): no session reset on close, statements prepared.</summary>
    private string ConnectionString => DatabaseServiceCollectionExtensions.WithCommitDurability(fixture.ConnectionString, CommitDurability.Relaxed, autoPrepare: true);

    private readonly List<NpgsqlDataSource> _dataSources = [];

    [Fact]
    public async Task Hangfire_asks_the_storage_for_the_time_and_gets_postgresqls()
    {
        // Hangfire's DelayedJobScheduler and RecurringJobScheduler take "now" from the storage when it has this feature
        // (Hangfire.Core 1.8: src/Hangfire.Core/Server/DelayedJobScheduler.cs:171, RecurringJobScheduler.cs:208), else
        // from the worker's own clock: a worker 10 minutes ahead enqueued delayed jobs and retries 10 minutes early.
        var storage = Storage();
        Assert.False(Stock().HasFeature(JobStorageFeatures.Connection.GetUtcDateTime));
        Assert.True(storage.HasFeature(JobStorageFeatures.Connection.GetUtcDateTime));
        using var connection = (JobStorageConnection)storage.GetConnection();
        var before = await fixture.ScalarAsync<DateTime>("SELECT now()");
        var told = connection.GetUtcDateTime();
        var after = await fixture.ScalarAsync<DateTime>("SELECT now()");
        Assert.Equal(DateTimeKind.Utc, told.Kind);
        Assert.InRange(told, before, after);
    }

    private PostgreSqlStorage Stock() => new(new NpgsqlConnectionFactory(ConnectionString, Options()), Options());

    private AdvisoryLockStorage Storage()
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        _dataSources.Add(dataSource);
        return new(Stock(), dataSource);
    }

    private static PostgreSqlStorageOptions Options() => HangfireSetup.StorageOptions(new WorkerOptions());

    [Fact]
    public void A_lock_excludes_every_other_connection_until_it_is_released()
    {
        var storage = Storage();
        using var first = storage.GetConnection();
        using var second = storage.GetConnection();
        var held = first.AcquireDistributedLock("resource-a", TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        Assert.Throws<DistributedLockTimeoutException>(() => second.AcquireDistributedLock("resource-a", TimeSpan.FromMilliseconds(300)));
        Assert.InRange(clock.ElapsedMilliseconds, 250, 5000);
        // Another resource is free meanwhile.
        second.AcquireDistributedLock("resource-b", TimeSpan.FromMilliseconds(100)).Dispose();
        held.Dispose();
        second.AcquireDistributedLock("resource-a", TimeSpan.FromMilliseconds(100)).Dispose();
    }

    [Fact]
    public void A_lock_is_re_entrant_on_its_own_connection_and_held_until_the_outer_release()
    {
        var storage = Storage();
        using var first = storage.GetConnection();
        using var second = storage.GetConnection();
        var outer = first.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
        // As Hangfire's storages do: the same resource through the same connection does not wait on itself.
        var inner = first.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100));
        inner.Dispose();
        Assert.Throws<DistributedLockTimeoutException>(() => second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100)));
        outer.Dispose();
        second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100)).Dispose();
    }

    [Fact]
    public async Task A_lock_whose_holder_lost_its_session_is_free_at_once_not_after_a_timeout()
    {
        // Hangfire.PostgreSql's lock row outlives its holder's connection (a PostgreSQL restart, a cut link) and blocks
        // the resource until it is DistributedLockTimeout (20 s) old; an advisory lock ends with the session.
        var storage = Storage();
        using var first = storage.GetConnection();
        using var second = storage.GetConnection();
        using var held = first.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
        var key = AdvisoryLockStorage.Key("resource");
        var terminated = await fixture.ScalarAsync<long>($"""
            SELECT count(pg_terminate_backend(pid))::bigint FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = {key}
            """);
        Assert.Equal(1, terminated);
        var clock = Stopwatch.StartNew();
        await Eventually.TrueAsync(() =>
        {
            try
            {
                second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(200)).Dispose();
                return Task.FromResult(true);
            }
            catch (DistributedLockTimeoutException)
            {
                return Task.FromResult(false);
            }
        }, "the lock is free once its holder's session is gone", 5);
        output.WriteLine($"free {clock.ElapsedMilliseconds} ms after its holder's session ended");
        Assert.Equal(0L, await fixture.ScalarAsync<long>("SELECT count(*) FROM hangfire.lock"));
    }

    [Fact]
    public void A_jobs_state_lock_brings_the_job_as_hangfire_reads_it_once_and_later_reads_go_to_the_table()
    {
        var storage = Storage();
        var client = new BackgroundJobClient(storage);
        var id = client.Create(() => LoneJob.Run(), new EnqueuedState(Queue));
        using var connection = storage.GetConnection();
        var stock = Stock().GetConnection().GetJobData(id);

        using (connection.AcquireDistributedLock($"job:{id}:state-lock", TimeSpan.FromSeconds(1)))
        {
            var read = connection.GetJobData(id);
            Assert.Equal((stock.State, stock.CreatedAt, stock.Job.Type, stock.Job.Method, stock.Job.Queue), (read.State, read.CreatedAt, read.Job.Type, read.Job.Method, read.Job.Queue));
            Assert.Null(read.LoadException);
            // The next read of it, under the same lock, is the table's: a state written meanwhile is seen.
            using (var tx = connection.CreateWriteTransaction())
            {
                tx.SetJobState(id, new DeletedState());
                tx.Commit();
            }
            Assert.Equal(DeletedState.StateName, connection.GetJobData(id).State);
        }
        // Another job's lock brings nothing for this one; an unknown job reads as none.
        using (connection.AcquireDistributedLock("job:999999:state-lock", TimeSpan.FromSeconds(1)))
            Assert.Null(connection.GetJobData("999999"));
    }

    [Fact]
    public async Task A_move_to_processing_skips_the_no_op_persist_and_every_other_non_final_state_still_persists()
    {
        var storage = Storage();
        var id = new BackgroundJobClient(storage).Create(() => LoneJob.Run(), new EnqueuedState(Queue));
        using var connection = storage.GetConnection();
        // A finished job with an expiry, requeued (the dashboard's Requeue): its expiry is cleared as before.
        using (var tx = connection.CreateWriteTransaction())
        {
            tx.SetJobState(id, new SucceededState(null, 0, 0));
            tx.ExpireJob(id, TimeSpan.FromDays(1));
            tx.Commit();
        }
        using (var tx = connection.CreateWriteTransaction())
        {
            tx.SetJobState(id, new EnqueuedState(Queue));
            tx.PersistJob(id);
            tx.Commit();
        }
        Assert.True(await fixture.ScalarAsync<bool>($"SELECT expireat IS NULL FROM hangfire.job WHERE id = {id}"));

        // The move to Processing, as Hangfire's worker makes it: no persist statement is sent.
        await fixture.ResetStatementsAsync();
        using (var tx = connection.CreateWriteTransaction())
        {
            tx.SetJobState(id, (global::Hangfire.States.IState)Activator.CreateInstance(typeof(ProcessingState),
                System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance, null, ["server", "worker"], null)!);
            tx.PersistJob(id);
            tx.Commit();
        }
        Assert.Equal(0L, await fixture.ScalarAsync<long>(StatementsSql("AND query ILIKE '%\"expireat\" = NULL%'")));
        Assert.Equal(("Processing", true), (await fixture.ScalarAsync<string>($"SELECT statename FROM hangfire.job WHERE id = {id}"),
            await fixture.ScalarAsync<bool>($"SELECT expireat IS NULL FROM hangfire.job WHERE id = {id}")));
    }

    [Fact]
    public async Task A_lone_jobs_state_changes_take_no_lock_rows_and_fewer_statements_than_the_lock_table()
    {
        // The same lone Hangfire jobs, one at a time, through a real Hangfire server over our Producer: first on
        // Hangfire.PostgreSql as it comes (its lock table), then through AdvisoryLockStorage.
        const int jobs = 30;
        var stock = await RunLoneJobsAsync(Stock(), jobs);
        var advisory = await RunLoneJobsAsync(Storage(), jobs);
        output.WriteLine($"per lone job, lock table: {stock}");
        output.WriteLine($"per lone job, advisory:   {advisory}");
        Assert.Equal(0, advisory.LockTableStatements);
        Assert.True(stock.LockTableStatements >= 4, $"the stock storage's lock table: {stock.LockTableStatements} statements per job");
        // Two state changes (Processing, Succeeded), each one lock of two statements sent together (its wait limit and
        // the lock), and the schedulers' own locks now and then.
        Assert.True(advisory.LockStatements <= 5, $"{advisory.LockStatements} advisory-lock statements per job");
        Assert.True(advisory.Statements <= stock.Statements - 4, $"{advisory.Statements} statements per job against {stock.Statements}");
        Assert.True(advisory.Transactions <= stock.Transactions - 2, $"{advisory.Transactions} transactions per job against {stock.Transactions}");
    }

    /// <summary>
    /// Per job: statements, explicit transactions, WAL written (printed only: a checkpoint's full-page images swamp it),
    /// statements on the lock table, advisory-lock statements.
    /// </summary>
    private sealed record Cost(double Statements, double Transactions, double WalBytes, double LockTableStatements, double LockStatements)
    {
        public override string ToString() =>
            $"{Statements:F1} statements, {Transactions:F1} transactions, {WalBytes:F0} WAL bytes, {LockTableStatements:F1} on hangfire.lock, {LockStatements:F1} advisory";
    }

    private async Task<Cost> RunLoneJobsAsync(JobStorage storage, int jobs)
    {
        await fixture.ResetAsync();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Jobs"] = fixture.ConnectionString }).Build();
        using var notifier = new Notifier(configuration, NullLogger<Notifier>.Instance);
        using var queue = new Producer(new JobQueueStore(_worker), notifier, Microsoft.Extensions.Options.Options.Create(new WorkerOptions()), NullLogger<Producer>.Instance);
        var postgres = storage as PostgreSqlStorage ?? ((AdvisoryLockStorage)storage).Inner;
        queue.Attach(postgres, [Queue]);
        var client = new BackgroundJobClient(storage);
        using (var server = new BackgroundJobServer(new BackgroundJobServerOptions { Queues = [Queue], WorkerCount = 2, ServerName = "locks" }, storage))
        {
            // Warm: the server announced, its processes started, every statement prepared once.
            await RunOneAsync(storage, client);
            await fixture.ResetStatementsAsync();
            var wal = await WalAsync();
            for (var i = 0; i < jobs; i++) await RunOneAsync(storage, client);
            var statements = await fixture.ScalarAsync<long>(StatementsSql(""));
            var lockTable = await fixture.ScalarAsync<long>(StatementsSql("AND query ILIKE '%\"lock\"%'"));
            var advisory = await fixture.ScalarAsync<long>(StatementsSql("AND (query ILIKE '%advisory%' OR query ILIKE '%set_config%')"));
            await using (var top = fixture.DataSource.CreateCommand("SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC LIMIT 25"))
            await using (var r = await top.ExecuteReaderAsync())
                while (await r.ReadAsync()) output.WriteLine($"{r.GetInt64(0),6} {r.GetString(1)}");
            var transactions = await fixture.ScalarAsync<long>(StatementsSql("AND query ILIKE 'BEGIN%'"));
            var cost = new Cost((double)statements / jobs, (double)transactions / jobs, (double)(await WalAsync() - wal) / jobs, (double)lockTable / jobs, (double)advisory / jobs);
            server.SendStop();
            return cost;
        }
    }

    /// <summary>Our measurement's own statements (pg_stat_statements, pg_stat_database, the state poll) left out.</summary>
    private static string StatementsSql(string filter) => $"""
        SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%statename%FROM hangfire.job%' {filter}
        """;

    /// <summary>WAL written so far (pg_stat_database's counters lag by up to seconds; the WAL position does not).</summary>
    private Task<long> WalAsync() => fixture.ScalarAsync<long>("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");

    /// <summary>The worker process's own data source (Producer's, and the test's polls), connected as a worker connects.</summary>
    private NpgsqlDataSource _worker = null!;

    private async Task RunOneAsync(JobStorage storage, BackgroundJobClient client)
    {
        var id = client.Create(() => LoneJob.Run(), new EnqueuedState(Queue));
        await Eventually.TrueAsync(
            async () =>
            {
                await using var poll = _worker.CreateCommand($"SELECT coalesce((SELECT statename = 'Succeeded' FROM hangfire.job WHERE id = {id}), false)");
                return (bool)(await poll.ExecuteScalarAsync())!;
            },
            $"Hangfire job {id} succeeded", 20);
        Assert.NotNull(storage);
    }
}

public static class LoneJob
{
    public static void Run()
    {
    }
}
