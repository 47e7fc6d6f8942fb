using Npgsql;

namespace Jobs.Benchmark;

/// <summary>The SQL a workload cost: statements (pg_stat_statements) and commits (pg_stat_database) per job.</summary>
public sealed record SqlCost(double StatementsPerJob, double CommitsPerJob)
{
    public static readonly SqlCost None = new(double.NaN, double.NaN);

    public override string ToString() => $"{StatementsPerJob:F1} / {CommitsPerJob:F1}";

    public static async Task ResetAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();");
        await cmd.ExecuteNonQueryAsync();
    }

    public static async Task<SqlCost> MeasureAsync(NpgsqlDataSource db, int jobs)
    {
        await Task.Delay(1500); // backends report their statistics at most every 0.5–1 s
        await using var cmd = db.CreateCommand("""
            SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
                   (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())
            """);
        await using (var top = db.CreateCommand("""
            SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC LIMIT 12
            """))
        await using (var rows = await top.ExecuteReaderAsync())
        {
            Console.Error.WriteLine($"  SQL census, statements per job, top 12 ({jobs} jobs):");
            while (await rows.ReadAsync()) Console.Error.WriteLine($"  {rows.GetInt64(0) / (double)jobs,8:F3}  {rows.GetString(1)}");
        }
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new SqlCost(Convert.ToDouble(reader.GetValue(0)) / jobs, reader.GetInt64(1) / (double)jobs);
    }
}
