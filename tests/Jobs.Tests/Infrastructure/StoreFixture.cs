using Jobs.Core.SingleJobs;
using Jobs.Core.Maps;
using Npgsql;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// A database (jobs_test_store) on a PostgreSQL cluster of its own, and the stores over it: no API, no workers, no
/// Hangfire (but for the submitter's facts, which use Hangfire's client on it). Nothing here is shared with the system
/// fixtures, so the store facts run beside them.
/// </summary>
public sealed class StoreFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;
    public NpgsqlDataSource DataSource { get; private set; } = null!;
    public JobQueries JobQueries { get; private set; } = null!;
    public JobSubmissionStore JobSubmissions { get; private set; } = null!;
    public JobExecutionStore JobExecution { get; private set; } = null!;
    public MapQueries MapQueries { get; private set; } = null!;
    public MapSubmissionStore MapSubmissions { get; private set; } = null!;
    public MapExecutionStore MapExecution { get; private set; } = null!;
    public JobCallbackStore JobCallbacks { get; private set; } = null!;
    public Jobs.Core.Database.DatabaseClock Clock { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync("test-postgres-store", "_store");
        DataSource = NpgsqlDataSource.Create(Database.ConnectionString);
        JobQueries = new JobQueries(DataSource);
        Clock = new Jobs.Core.Database.DatabaseClock(DataSource, Microsoft.Extensions.Logging.Abstractions.NullLogger<Jobs.Core.Database.DatabaseClock>.Instance); // unmeasured: PostgreSQL runs on this host
        JobSubmissions = new JobSubmissionStore(DataSource, JobQueries, Clock);
        JobExecution = new JobExecutionStore(DataSource);
        MapQueries = new MapQueries(DataSource);
        MapSubmissions = new MapSubmissionStore(DataSource, MapQueries);
        MapExecution = new MapExecutionStore(DataSource);
        JobCallbacks = new JobCallbackStore(DataSource);
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await Database.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class StoreCollection : ICollectionFixture<StoreFixture>
{
    public const string Name = "store";
}

