using Jobs.Core.Database;
using Jobs.Launcher.Postgres;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// The tests' PostgreSQL: the launcher's private cluster mechanism in .data/&lt;cluster&gt;, or the server named
/// by JOBS_TEST_CONNECTION_STRING (its database is dropped and recreated). Never skipped: without PostgreSQL
/// the tests fail, loudly.
/// </summary>
/// <remarks>
/// Each fixture names a cluster of its own, because fixtures run side by side (xunit.runner.json) and a cluster
/// belongs to whoever started it: its <see cref="DisposeAsync"/> stops it, and the outage tests stop and restart
/// it mid-run. Sharing one would let a fixture that finishes first, or an outage test, take PostgreSQL away from
/// the tests of another fixture still running.
/// </remarks>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string EnvironmentVariable = "JOBS_TEST_CONNECTION_STRING";

    private readonly LocalPostgres? _postgres;

    public string ConnectionString { get; }
    public LocalPostgres? Postgres => _postgres;

    private TestDatabase(LocalPostgres? postgres, string connectionString)
    {
        _postgres = postgres;
        ConnectionString = connectionString;
    }

    /// <param name="cluster">The private cluster's folder under .data; no other fixture may use it (see remarks).</param>
    /// <param name="suffix">
    /// Appended to the database's name, jobs_test (or the one JOBS_TEST_CONNECTION_STRING names): on a server of
    /// one's own, fixtures running side by side must not drop each other's database.
    /// </param>
    public static async Task<TestDatabase> CreateAsync(string cluster, string suffix = "")
    {
        LocalPostgres? postgres = null;
        string connectionString;
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } external)
        {
            var builder = new NpgsqlConnectionStringBuilder(external);
            var database = (builder.Database ?? "jobs_test") + suffix;
            builder.Database = "postgres";
            await RecreateAsync(builder.ConnectionString, database);
            builder.Database = database;
            connectionString = builder.ConnectionString;
        }
        else
        {
            postgres = await LocalPostgres.StartAsync(Path.Combine(ProgramPaths.RepositoryRoot, ".data", cluster), _ => { });
            var database = "jobs_test" + suffix;
            await postgres.EnsureDatabaseAsync(database, recreate: true);
            connectionString = postgres.ConnectionString(database);
        }
        await Migrator.MigrateAsync(connectionString);
        return new TestDatabase(postgres, connectionString);
    }

    /// <summary>Empties the project's and Hangfire's job tables: each test starts from nothing. Schedules are left to their tests.</summary>
    public async Task ResetAsync()
    {
        // Workers may still be finishing the previous test's work; TRUNCATE can then deadlock with them.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await TruncateAsync();
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 5)
            {
                await Task.Delay(200 * attempt);
            }
            catch (Exception e) when (Jobs.Core.Database.DatabaseRetry.IsUnavailable(e) && attempt < 5)
            {
                // Pooled connections of this test process died with a PostgreSQL restart (the outage test).
                NpgsqlConnection.ClearAllPools();
            }
        }
    }

    private async Task TruncateAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            TRUNCATE jobs.job, jobs.map, jobs.map_chunk, jobs.map_item, jobs.map_result, jobs.map_tally, jobs.idempotency_key, jobs.paused_queue;
            TRUNCATE hangfire.jobqueue, hangfire.state, hangfire.jobparameter, hangfire.job RESTART IDENTITY CASCADE;
            """, connection);
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T?> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters) cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        var value = await cmd.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    private static async Task RecreateAsync(string adminConnectionString, string database)
    {
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        var quoted = "\"" + database.Replace("\"", "\"\"") + "\"";
        await using (var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", connection))
            await drop.ExecuteNonQueryAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {quoted}", connection);
        await create.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }
}
