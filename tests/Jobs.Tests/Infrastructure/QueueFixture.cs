using Jobs.Core.Database;
using Jobs.Core.Queue;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Tests.Infrastructure;

/// <summary>A PostgreSQL cluster of its own with pg_stat_statements loaded, the project's schemas migrated.</summary>
public sealed class QueueFixture : IAsyncLifetime
{
    private LocalPostgres? _postgres;

    public string ConnectionString { get; private set; } = "";
    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _postgres = await LocalPostgres.StartAsync(Path.Combine(ProgramPaths.RepositoryRoot, ".data", "test-postgres-wakeup"), _ => { },
            extraSettings: "-c shared_preload_libraries=pg_stat_statements");
        await _postgres.EnsureDatabaseAsync("jobs_test_wakeup", recreate: true);
        ConnectionString = _postgres.ConnectionString("jobs_test_wakeup");
        await Migrator.MigrateAsync(ConnectionString);
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await ScalarAsync<int>("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT 1");
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }

    public Task ResetAsync() => ScalarAsync<int>("TRUNCATE hangfire.jobqueue, hangfire.job CASCADE; SELECT 1");

    public Task ResetStatementsAsync() => ScalarAsync<object>("SELECT pg_stat_statements_reset()");

    /// <summary>Producer's fetch statements run in this database since the last reset.</summary>
    public Task<long> FetchStatementsAsync() => ScalarAsync<long>("""
        SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query LIKE '%jobqueue q SET fetchedat = now(), updatecount%'
        """);

    /// <summary>Enqueues <paramref name="count"/> Hangfire jobs in one transaction, as Hangfire.PostgreSql's enqueue does: INSERT, then NOTIFY.</summary>
    public async Task<long[]> EnqueueAsync(string queue, int count)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var cmd = new NpgsqlCommand("""
            WITH j AS (INSERT INTO hangfire.job (invocationdata, arguments, createdat)
                       SELECT '{}', '[]', now() FROM generate_series(1, $2) RETURNING id),
                 q AS (INSERT INTO hangfire.jobqueue (jobid, queue) SELECT id, $1 FROM j RETURNING jobid)
            SELECT jobid FROM q
            """, connection, transaction);
        cmd.Parameters.Add(new() { Value = queue });
        cmd.Parameters.Add(new() { Value = count });
        var ids = new List<long>();
        await using (var reader = await cmd.ExecuteReaderAsync())
            while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
        await using (var notify = new NpgsqlCommand($"NOTIFY {Channels.NewWork}", connection, transaction))
            await notify.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        return [.. ids];
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }
}

[CollectionDefinition(Name)]
public sealed class QueueCollection : ICollectionFixture<QueueFixture>
{
    public const string Name = "queue";
}
