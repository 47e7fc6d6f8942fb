using Npgsql;

namespace Jobs.Core.Storage;

/// <summary>A recurring schedule: every time <see cref="Cron"/> fires (in <see cref="TimeZone"/>), a job is submitted.</summary>
public sealed record ScheduleRecord(string Name, string Cron, string TimeZone, string Function, string Args, string Kwargs, string Queue,
    DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>SQL over jobs.schedule. Hangfire's recurring job of the same name is what fires it.</summary>
public sealed class ScheduleStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "name, cron, time_zone, function, args::text, kwargs::text, queue, created_at, updated_at";

    public async Task<ScheduleRecord> UpsertAsync(ScheduleRecord s, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            INSERT INTO jobs.schedule (name, cron, time_zone, function, args, kwargs, queue)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)
            ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, time_zone = EXCLUDED.time_zone, function = EXCLUDED.function,
                args = EXCLUDED.args, kwargs = EXCLUDED.kwargs, queue = EXCLUDED.queue, updated_at = now()
            RETURNING {Columns}
            """);
        foreach (var value in new object[] { s.Name, s.Cron, s.TimeZone, s.Function, s.Args, s.Kwargs, s.Queue })
            cmd.Parameters.Add(new() { Value = value });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return Read(reader);
    }

    public async Task<ScheduleRecord?> GetAsync(string name, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.schedule WHERE name = $1");
        cmd.Parameters.Add(new() { Value = name });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> ListAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.schedule ORDER BY name");
        var list = new List<ScheduleRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(Read(reader));
        return list;
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM jobs.schedule WHERE name = $1");
        cmd.Parameters.Add(new() { Value = name });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    private static ScheduleRecord Read(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3),
        r.GetString(4), r.GetString(5), r.GetString(6), r.GetDateTime(7), r.GetDateTime(8));
}
