using DbUp;
using DbUp.Engine;
using Hangfire.PostgreSql;
using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// The explicit migrate step: the numbered SQL files in migrations/ (embedded in this assembly, applied by
/// DbUp, journaled in jobs.schemaversions), then Hangfire's own schema through Hangfire.PostgreSql's
/// installer, which owns that schema's versioning. Processes never change the schema as a side effect of
/// starting (Hangfire's PrepareSchemaIfNecessary is off); the launcher, the tests and the docker migrate
/// service call this.
/// </summary>
public static class Migrator
{
    public const string HangfireSchema = "hangfire";
    private const string ResourcePrefix = "Jobs.Core.Migrations.Scripts.";

    // Any constant works; it only has to be the same in every process that migrates.
    private const long MigrationLockKey = 0x4A6F62734D696772; // "JobsMigr"

    /// <summary>Names of the project's migration scripts, in the order they apply.</summary>
    public static IReadOnlyList<string> ScriptNames { get; } = typeof(Migrator).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
        .Order(StringComparer.Ordinal)
        .ToArray();

    public static async Task MigrateAsync(string connectionString, Action<string>? log = null, CancellationToken ct = default)
    {
        log ??= _ => { };
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        // Launcher, tests and several containers may migrate at once; one at a time is enough.
        await using (var cmd = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", connection))
        {
            cmd.Parameters.AddWithValue("key", MigrationLockKey);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        try
        {
            var upgrader = DeployChanges.To
                .PostgresqlDatabase(connectionString, "jobs")
                .JournalToPostgresqlTable("jobs", "schemaversions")
                .WithScriptsEmbeddedInAssembly(typeof(Migrator).Assembly, name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
                .WithTransactionPerScript()
                .LogTo(new DbUpLog(log))
                .Build();
            DatabaseUpgradeResult result = upgrader.PerformUpgrade();
            if (!result.Successful)
                throw new InvalidOperationException($"Migration {result.ErrorScript?.Name} failed: {result.Error.Message}", result.Error);
            foreach (var script in result.Scripts) log($"applied {script.Name}");

            PostgreSqlObjectsInstaller.Install(connection, HangfireSchema);
            log("Hangfire schema is current");
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection);
            unlock.Parameters.AddWithValue("key", MigrationLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>How many of this build's scripts the database has not applied yet (0 = schema current).</summary>
    public static async Task<int> PendingScriptCountAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT coalesce(array_agg(scriptname), '{}') FROM jobs.schemaversions
            """);
        try
        {
            var applied = (string[])(await cmd.ExecuteScalarAsync(ct))!;
            return ScriptNames.Except(applied, StringComparer.Ordinal).Count();
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return ScriptNames.Count;
        }
    }

    private sealed class DbUpLog(Action<string> log) : DbUp.Engine.Output.IUpgradeLog
    {
        public void LogTrace(string format, params object[] args) { }
        public void LogDebug(string format, params object[] args) { }
        public void LogInformation(string format, params object[] args) { }
        public void LogWarning(string format, params object[] args) => log(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        public void LogError(string format, params object[] args) => log(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        public void LogError(Exception ex, string format, params object[] args) => log(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args) + ": " + ex.Message);
    }
}
