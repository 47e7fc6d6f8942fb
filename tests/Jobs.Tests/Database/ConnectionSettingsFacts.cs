using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Tests.Database;

/// <summary>
/// Which connections prepare statements automatically: the API's own statements carry clients' data and do not
/// (npgsql/npgsql#6391, see <see cref="Schedules.ScheduleStoreFacts"/>); workers' do; a connection string that says wins.
/// </summary>
public sealed class ConnectionSettingsFacts
{
    private const string Given = "Host=127.0.0.1;Username=jobs;Password=secret;Database=jobs";

    [Theory]
    [InlineData(Given, CommitDurability.Durable, 0)]
    [InlineData(Given, CommitDurability.Relaxed, 64)]
    [InlineData(Given + ";Max Auto Prepare=0", CommitDurability.Relaxed, 0)]
    [InlineData(Given + ";maxautoprepare=5", CommitDurability.Relaxed, 5)]
    [InlineData(Given + ";Max Auto Prepare=8", CommitDurability.Durable, 8)]
    public void Store_statements_are_prepared_automatically_in_workers_only(string connectionString, CommitDurability commits, int expected)
    {
        var settings = new NpgsqlConnectionStringBuilder(DatabaseServiceCollectionExtensions.StoreConnectionString(connectionString, commits));
        Assert.Equal(expected, settings.MaxAutoPrepare);
        Assert.True(settings.NoResetOnClose);
        Assert.Equal(commits == CommitDurability.Relaxed ? "-c synchronous_commit=off" : null, settings.Options);
    }
}
