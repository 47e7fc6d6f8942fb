using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Storage;

/// <summary>
/// SQL over jobs.job, the source of truth for what clients see. Every state change that finishes a job
/// also sends NOTIFY jobs_finished so waiting API requests wake at once.
/// </summary>
public sealed class JobStore(NpgsqlDataSource dataSource)
{
    public const string FinishedChannel = "jobs_finished";

    private const string Columns = """
        id, function, args::text, kwargs::text, queue, state, result::text, error::text, progress::text,
        attempts, created_at, started_at, finished_at
        """;

    /// <summary>Stores a new job. Once this returns, the job is durable: it will run even if the caller dies now.</summary>
    public async Task<JobRecord> InsertAsync(Guid id, string function, string args, string kwargs, string queue, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            INSERT INTO jobs.job (id, function, args, kwargs, queue, state)
            VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, 'enqueued')
            RETURNING {Columns}
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = function });
        cmd.Parameters.Add(new() { Value = args });
        cmd.Parameters.Add(new() { Value = kwargs });
        cmd.Parameters.Add(new() { Value = queue });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return Read(reader);
    }

    /// <summary>Records that a Hangfire job now carries this row, so the sweeper leaves it alone.</summary>
    public async Task MarkDispatchedAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("UPDATE jobs.job SET dispatched_at = now() WHERE id = $1 AND dispatched_at IS NULL");
        cmd.Parameters.Add(new() { Value = id });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Removes a row whose Hangfire job could not be created, so a refused submission leaves nothing behind.</summary>
    public async Task DeleteUndispatchedAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM jobs.job WHERE id = $1 AND dispatched_at IS NULL AND state = 'enqueued'");
        cmd.Parameters.Add(new() { Value = id });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<JobRecord?> GetAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    /// <summary>Newest first; <paramref name="before"/> is the last id of the previous page (ids are UUIDv7, time-ordered).</summary>
    public async Task<IReadOnlyList<JobRecord>> ListAsync(JobFilter filter, int limit, Guid? before, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {Columns} FROM jobs.job
            WHERE ($1::text IS NULL OR state = $1)
              AND ($2::text IS NULL OR function = $2)
              AND ($3::text IS NULL OR queue = $3)
              AND ($4::uuid IS NULL OR id < $4)
            ORDER BY id DESC
            LIMIT $5
            """);
        cmd.Parameters.Add(new() { Value = (object?)filter.State ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)filter.Function ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)filter.Queue ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)before ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<JobRecord>(limit);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(Read(reader));
        return list;
    }

    /// <summary>
    /// Takes the job for one run by Hangfire job <paramref name="hangfireJobId"/>. The first Hangfire job to
    /// claim a row owns it; a duplicate dispatch gets null and must not run the function. A job still
    /// 'processing' is claimable again by its owner: that is the re-run after its worker died.
    /// </summary>
    public async Task<ClaimedJob?> ClaimAsync(Guid id, string hangfireJobId, string worker, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job
            SET state = 'processing', attempts = attempts + 1, started_at = now(), worker = $3,
                hangfire_job_id = $2, dispatched_at = coalesce(dispatched_at, now()), progress = NULL
            WHERE id = $1
              AND (hangfire_job_id IS NULL OR hangfire_job_id = $2)
              AND state IN ('scheduled', 'enqueued', 'processing')
            RETURNING function, args::text, kwargs::text, attempts
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new ClaimedJob(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3))
            : null;
    }

    public Task<bool> SucceedAsync(Guid id, string hangfireJobId, string? resultJson, TimeSpan retention, CancellationToken ct) =>
        FinishAsync(id, hangfireJobId, JobStates.Succeeded, "result", resultJson ?? "null", retention, ct);

    public Task<bool> FailAsync(Guid id, string hangfireJobId, string errorJson, TimeSpan retention, CancellationToken ct) =>
        FinishAsync(id, hangfireJobId, JobStates.Failed, "error", errorJson, retention, ct);

    private async Task<bool> FinishAsync(Guid id, string hangfireJobId, string state, string column, string json, TimeSpan retention, CancellationToken ct)
    {
        // column is one of two constants above, never user input.
        await using var cmd = dataSource.CreateCommand($"""
            WITH done AS (
                UPDATE jobs.job
                SET state = $3, {column} = $4::jsonb, finished_at = now(), expires_at = now() + $5
                WHERE id = $1 AND hangfire_job_id = $2 AND state = 'processing'
                RETURNING id
            )
            SELECT pg_notify('{FinishedChannel}', id::text) FROM done
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = state });
        cmd.Parameters.Add(new() { Value = json });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct);
    }

    public async Task ReportProgressAsync(Guid id, string hangfireJobId, string progressJson, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job SET progress = $3::jsonb WHERE id = $1 AND hangfire_job_id = $2 AND state = 'processing'
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = progressJson });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Rows accepted longer than <paramref name="grace"/> ago that never got a Hangfire job (their API died).</summary>
    public async Task<IReadOnlyList<(Guid Id, string Function, string Args, string Kwargs, string Queue)>> FindUndispatchedAsync(
        TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, function, args::text, kwargs::text, queue FROM jobs.job
            WHERE dispatched_at IS NULL AND state = 'enqueued' AND created_at < now() - $1
            ORDER BY created_at
            LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<(Guid, string, string, string, string)>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            list.Add((reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        return list;
    }

    /// <summary>Deletes finished jobs past their retention; returns the Hangfire ids of the failed ones.</summary>
    public async Task<(int Deleted, IReadOnlyList<string> FailedHangfireJobs)> PurgeExpiredAsync(int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            DELETE FROM jobs.job WHERE id IN (
                SELECT id FROM jobs.job WHERE expires_at < now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING state, hangfire_job_id
            """);
        cmd.Parameters.Add(new() { Value = limit });
        var deleted = 0;
        var failed = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            deleted++;
            if (reader.GetString(0) == JobStates.Failed && !reader.IsDBNull(1)) failed.Add(reader.GetString(1));
        }
        return (deleted, failed);
    }

    private static JobRecord Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
        r.IsDBNull(6) ? null : r.GetString(6),
        r.IsDBNull(7) ? null : r.GetString(7),
        r.IsDBNull(8) ? null : r.GetString(8),
        r.GetInt32(9),
        r.GetDateTime(10),
        r.IsDBNull(11) ? null : r.GetDateTime(11),
        r.IsDBNull(12) ? null : r.GetDateTime(12));
}
