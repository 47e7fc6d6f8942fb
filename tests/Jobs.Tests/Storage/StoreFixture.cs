using Jobs.Core.Storage;
using Jobs.Tests.Infrastructure;
using Npgsql;

namespace Jobs.Tests.Storage;

/// <summary>
/// A database (jobs_test_store) on a PostgreSQL cluster of its own, and the store over it: no API, no workers, no
/// Hangfire. Nothing here is shared with the system fixtures, so the store facts run beside them.
/// </summary>
public sealed class StoreFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;
    public NpgsqlDataSource DataSource { get; private set; } = null!;
    public JobStore Jobs { get; private set; } = null!;
    public MapStore Maps { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync("test-postgres-store", "_store");
        DataSource = NpgsqlDataSource.Create(Database.ConnectionString);
        Jobs = new JobStore(DataSource);
        Maps = new MapStore(DataSource);
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

