using Jobs.Core.Database;
using Jobs.Core.Schedules;
using Jobs.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Jobs.Tests.Schedules;

/// <summary>The schedule store's SQL on real PostgreSQL, with the connection settings the service uses.</summary>
[Collection(StoreCollection.Name)]
public sealed class ScheduleStoreFacts(StoreFixture store) : IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await store.Database.ResetAsync();
        await store.Database.ScalarAsync<object>("TRUNCATE jobs.schedule"); // the shared reset leaves schedules (the API's tests keep Hangfire's in step)
    }
    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>One pooled connection with the API's settings for its own statements.</summary>
    private NpgsqlDataSource OneConnection(int autoPrepareMinUsages = 5)
    {
        var settings = new NpgsqlConnectionStringBuilder(DatabaseServiceCollectionExtensions.StoreConnectionString(store.Database.ConnectionString, CommitDurability.Durable))
        {
            MaxPoolSize = 1,
            AutoPrepareMinUsages = autoPrepareMinUsages,
        };
        return NpgsqlDataSource.Create(settings.ConnectionString);
    }

    private static ScheduleRecord Schedule(string name, string args = "[1]") =>
        new(name, "* * * * *", "UTC", "math.square", args, "{}", "default", default, default);

    /// <summary>
    /// One pooled connection with the API's settings: a schedule PostgreSQL refuses, and a 5,000-character cron
    /// Hangfire refuses while the row's transaction is open, leave the connection whole for the next upsert.
    /// </summary>
    [Fact]
    public async Task A_refused_schedule_leaves_its_connection_whole_for_the_next()
    {
        await using var dataSource = OneConnection();
        var schedules = new ScheduleStore(dataSource, NullLogger<ScheduleStore>.Instance);
        for (var i = 0; i < 8; i++) await schedules.UpsertAsync(Schedule($"s{i}"), _ => { }, default);

        await Assert.ThrowsAnyAsync<Exception>(() => schedules.UpsertAsync(Schedule("nul", """["a\u0000"]"""), _ => { }, default));
        await schedules.UpsertAsync(Schedule("after-nul"), _ => { }, default);
        // A raw U+0000 in a text parameter: PostgreSQL refuses it at Bind.
        await Assert.ThrowsAnyAsync<Exception>(() => schedules.UpsertAsync(Schedule("raw") with { Cron = "* * * * *\0" }, _ => { }, default));
        await schedules.UpsertAsync(Schedule("after-raw"), _ => { }, default);
        // The cron Hangfire refuses (register throws, the row rolls back), 5,000 characters long.
        var longCron = Schedule("long") with { Cron = "Q" + new string('x', 4999) };
        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<ArgumentException>(() => schedules.UpsertAsync(longCron, _ => throw new ArgumentException("bad cron"), default));
            await schedules.UpsertAsync(Schedule($"after-long-{i}"), _ => { }, default);
        }
        Assert.Equal(13, (await schedules.ListAsync(default)).Count);
    }

    /// <summary>
    /// The cause of CI's intermittent 500 from POST /schedules ("Received unexpected backend message DataRow"):
    /// npgsql/npgsql#6391. With automatic preparation on, a statement whose preparing execution fails inside a
    /// transaction (here the first, with AutoPrepareMinUsages = 1; it was the fifth in the service) leaves the
    /// connection out of step, and the same statement's next use fails. With the API's settings (no automatic
    /// preparation of its own statements) the connection stays whole; with <c>Max Auto Prepare = 64</c>, as before, both cases fail.
    /// </summary>
    [Theory]
    [InlineData("nul in a jsonb argument")]
    [InlineData("raw nul in a text parameter")]
    public async Task A_statement_that_fails_while_being_prepared_leaves_its_connection_whole(string failure)
    {
        await using var dataSource = OneConnection(autoPrepareMinUsages: 1);
        var schedules = new ScheduleStore(dataSource, NullLogger<ScheduleStore>.Instance);
        var bad = failure.StartsWith("nul", StringComparison.Ordinal) ? Schedule("bad", """["a\u0000"]""") : Schedule("bad") with { Cron = "* * * * *\0" };
        await Assert.ThrowsAnyAsync<PostgresException>(() => schedules.UpsertAsync(bad, _ => { }, default));
        for (var i = 0; i < 3; i++) await schedules.UpsertAsync(Schedule($"after-{i}"), _ => { }, default);
        var names = (await schedules.ListAsync(default)).Select(x => x.Name).ToList();
        Assert.Contains("after-2", names);
        Assert.DoesNotContain("bad", names);
    }
}
