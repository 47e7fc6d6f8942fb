using Jobs.Core.Database;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Jobs.Core.Schedules;

/// <summary>A recurring schedule: every time <see cref="Cron"/> fires (in <see cref="TimeZone"/>), a job is submitted.</summary>
public sealed record ScheduleRecord(string Name, string Cron, string TimeZone, string Function, string Args, string Kwargs, string Queue,
    DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>SQL over jobs.schedule. Hangfire's recurring job of the same name is what fires it.</summary>
public sealed class ScheduleStore(NpgsqlDataSource dataSource, ILogger<ScheduleStore> logger)
{
    private const string Columns = "name, cron, time_zone, function, args::text, kwargs::text, queue, created_at, updated_at";

    /// <summary>
    /// Creates or replaces schedule <paramref name="s"/> and, through <paramref name="register"/>, what fires it
    /// (Hangfire's recurring job), so that a refusal by either leaves nothing anywhere. The row comes first, in a
    /// transaction held open while <paramref name="register"/> runs: a value PostgreSQL refuses never reaches
    /// Hangfire, and if <paramref name="register"/> throws (an invalid cron) the row rolls back, a replaced schedule
    /// with it. Should the commit itself fail, <paramref name="register"/> is called again with the schedule as it
    /// was (null: there was none), so Hangfire is not left firing what was not stored.
    /// </summary>
    public async Task<ScheduleRecord> UpsertAsync(ScheduleRecord s, Action<ScheduleRecord?> register, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        ScheduleRecord? previous;
        // The name is locked until the commit, whether a row exists or not (FOR UPDATE alone locks nothing for a new
        // name): concurrent creates, replacements and deletes of one schedule reach Hangfire in the order they are stored.
        await LockNameAsync(connection, tx, s.Name, ct);
        await using (var select = new NpgsqlCommand($"SELECT {Columns} FROM jobs.schedule WHERE name = $1", connection, tx))
        {
            select.Parameters.Add(new() { Value = s.Name });
            previous = await select.ReadFirstOrDefaultAsync(Read, ct);
        }
        ScheduleRecord saved;
        await using (var upsert = new NpgsqlCommand($"""
            INSERT INTO jobs.schedule (name, cron, time_zone, function, args, kwargs, queue)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)
            ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, time_zone = EXCLUDED.time_zone, function = EXCLUDED.function,
                args = EXCLUDED.args, kwargs = EXCLUDED.kwargs, queue = EXCLUDED.queue, updated_at = now()
            RETURNING {Columns}
            """, connection, tx))
        {
            foreach (var value in new object[] { s.Name, s.Cron, s.TimeZone, s.Function, s.Args, s.Kwargs, s.Queue })
                upsert.Parameters.Add(new() { Value = value });
            saved = (await upsert.ReadFirstOrDefaultAsync(Read, ct))!;
        }
        register(saved);
        try
        {
            // Not cancelled by a caller gone away: Hangfire already fires the schedule, so its row must land too.
            await tx.CommitAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            // If only the commit's answer was lost, this leaves the stored schedule fired as before (or not at
            // all): visible in GET /schedules, and mended by the caller's retry of the failed request.
            try
            {
                register(previous);
            }
            catch (Exception undo)
            {
                logger.LogError(undo, "Schedule {Name} was not stored ({Error}) and its recurring job could not be restored", s.Name, e.Message);
            }
            throw;
        }
        return saved;
    }

    public async Task<ScheduleRecord?> GetAsync(string name, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.schedule WHERE name = $1");
        cmd.Parameters.Add(new() { Value = name });
        return await cmd.ReadFirstOrDefaultAsync(Read, ct);
    }

    public async Task<IReadOnlyList<ScheduleRecord>> ListAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.schedule ORDER BY name");
        return await cmd.ReadListAsync(Read, ct);
    }

    /// <summary>
    /// Deletes the row and, through <paramref name="register"/>(null), Hangfire's recurring job, under the name's lock
    /// (see <see cref="UpsertAsync"/>): a concurrent create cannot slip its recurring job in between. Should the commit
    /// fail, the schedule is registered again as it was. False: no such schedule.
    /// </summary>
    public async Task<bool> DeleteAsync(string name, Action<ScheduleRecord?> register, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockNameAsync(connection, tx, name, ct);
        ScheduleRecord? previous;
        await using (var cmd = new NpgsqlCommand($"DELETE FROM jobs.schedule WHERE name = $1 RETURNING {Columns}", connection, tx))
        {
            cmd.Parameters.Add(new() { Value = name });
            previous = await cmd.ReadFirstOrDefaultAsync(Read, ct);
        }
        register(null); // an orphan left by an older version goes too
        try
        {
            await tx.CommitAsync(CancellationToken.None);
        }
        catch (Exception e) when (previous is not null)
        {
            try
            {
                register(previous);
            }
            catch (Exception undo)
            {
                logger.LogError(undo, "Schedule {Name} was not deleted ({Error}) and its recurring job could not be restored", name, e.Message);
            }
            throw;
        }
        return previous is not null;
    }

    private static async Task LockNameAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('jobs.schedule:' || $1, 0))", connection, tx);
        cmd.Parameters.Add(new() { Value = name });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static ScheduleRecord Read(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3),
        r.GetString(4), r.GetString(5), r.GetString(6), r.GetDateTime(7), r.GetDateTime(8));
}
