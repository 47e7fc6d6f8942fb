using Jobs.Core.Database;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Reads of jobs.job, the source of truth for what clients see (GET /jobs, the dashboard, callbacks), and the one
/// row mapping of a job every store uses. Every change that finishes a job notifies <see cref="Queue.Channels.JobFinished"/>.
/// </summary>
public sealed class JobQueries(NpgsqlDataSource dataSource)
{
    internal const string Columns = """
        id, function, args::text, kwargs::text, queue, state, result::text, error::text, progress::text,
        attempts, created_at, started_at, finished_at, run_at, timeout_seconds, max_retries, callback_url,
        callback::text, hangfire_job_id, tuples::text
        """;

    /// <summary>Results up to this many bytes are read with their job; larger ones are copied by <see cref="CopyResultAsync"/>.</summary>
    public const int InlineResultBytes = 64 * 1024;

    /// <summary>
    /// Unfinished jobs as the invariant check reads them (<c>Queue.Maintenance.Invariants</c>): kind, id, state, Hangfire
    /// job, created, and since when its situation counts.
    /// </summary>
    internal const string UnfinishedForInvariants = """
        SELECT 'job' AS kind, id::text AS id, state, hangfire_job_id, created_at, created_at AS since FROM jobs.job
        WHERE state IN ('scheduled', 'enqueued', 'processing') ORDER BY state = 'enqueued', id LIMIT 20000
        """;

    /// <summary>
    /// Unfinished jobs as the queue figures read them (GET /queues, /metrics): queue, state, attempts, and since when it is due.
    /// <c>$1</c>: one queue, or null for every queue.
    /// </summary>
    public const string UnfinishedForQueueFigures = """
        SELECT queue, state, attempts, coalesce(run_at, created_at) AS since FROM jobs.job
        WHERE state IN ('enqueued', 'scheduled', 'processing') AND ($1::text IS NULL OR queue = $1)
        """;

    /// <summary>
    /// <see cref="Columns"/>, but a result larger than <see cref="InlineResultBytes"/> is left out (null) and said to be
    /// (<see cref="JobRecord.ResultNotRead"/>): a reader that serves it copies it with <see cref="CopyResultAsync"/>
    /// instead of holding a copy of a result of up to Jobs:MaxResultBytes per request. (octet_length reads the stored
    /// size from the value's header: a large result is not read to be measured.)
    /// </summary>
    private static readonly string ColumnsWithoutLargeResult = $"""
        id, function, args::text, kwargs::text, queue, state,
        CASE WHEN octet_length(result::text) <= {InlineResultBytes} THEN result::text END, error::text, progress::text,
        attempts, created_at, started_at, finished_at, run_at, timeout_seconds, max_retries, callback_url,
        callback::text, hangfire_job_id, tuples::text, coalesce(octet_length(result::text) > {InlineResultBytes}, false)
        """;

    /// <param name="id">The job.</param>
    /// <param name="ct">Cancels the read.</param>
    /// <param name="withResult">False: a result larger than <see cref="InlineResultBytes"/> is left out (<see cref="JobRecord.ResultNotRead"/>); <see cref="CopyResultAsync"/> serves it.</param>
    public async Task<JobRecord?> GetAsync(Guid id, CancellationToken ct, bool withResult = true)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {(withResult ? Columns : ColumnsWithoutLargeResult)} FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        return await cmd.ReadFirstOrDefaultAsync(Read, ct);
    }

    /// <summary>The rows a Hangfire job carries (more than one when submissions were batched), in submission order.</summary>
    public async Task<IReadOnlyList<JobRecord>> GetByHangfireJobIdAsync(string hangfireJobId, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.job WHERE hangfire_job_id = $1 ORDER BY id LIMIT $2");
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(Read, ct);
    }

    /// <summary>Newest first; <paramref name="before"/> is the last id of the previous page (ids are UUIDv7, time-ordered).</summary>
    /// <param name="filter">Which jobs.</param>
    /// <param name="limit">At most this many.</param>
    /// <param name="before">The last id of the previous page.</param>
    /// <param name="ct">Cancels the read.</param>
    /// <param name="withResult">False: results larger than <see cref="InlineResultBytes"/> are left out (<see cref="JobRecord.ResultNotRead"/>); <see cref="CopyResultAsync"/> serves them.</param>
    public async Task<IReadOnlyList<JobRecord>> ListAsync(JobFilter filter, int limit, Guid? before, CancellationToken ct, bool withResult = true)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {(withResult ? Columns : ColumnsWithoutLargeResult)} FROM jobs.job
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
        cmd.Parameters.Add(Parameters.Uuid(before));
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(Read, ct, limit);
    }

    /// <summary>How many jobs each queue holds in each state (GET /pool).</summary>
    public async Task<IReadOnlyList<(string Queue, string State, long Count)>> CountByQueueAndStateAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT queue, state, count(*) FROM jobs.job GROUP BY queue, state");
        return await cmd.ReadListAsync(r => (r.GetString(0), r.GetString(1), r.GetInt64(2)), ct);
    }

    /// <summary>
    /// Copies the job's stored result, its JSON text in UTF-8, to <paramref name="output"/> as PostgreSQL sends it
    /// (<see cref="Rows.CopyTextAsync"/>), so serving a large result holds no copy of it; writes <c>null</c> when
    /// there is none (the job was purged meanwhile).
    /// </summary>
    public async Task CopyResultAsync(Guid id, Stream output, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT coalesce(result::text, 'null') FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        await cmd.CopyTextAsync(output, ct, ifNone: "null");
    }

    internal static JobRecord Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
        r.IsDBNull(6) ? null : r.GetString(6),
        r.IsDBNull(7) ? null : r.GetString(7),
        r.IsDBNull(8) ? null : r.GetString(8),
        r.GetInt32(9),
        r.GetDateTime(10),
        r.IsDBNull(11) ? null : r.GetDateTime(11),
        r.IsDBNull(12) ? null : r.GetDateTime(12),
        r.IsDBNull(13) ? null : r.GetDateTime(13),
        r.IsDBNull(14) ? null : r.GetDouble(14),
        r.GetInt32(15),
        r.IsDBNull(16) ? null : r.GetString(16),
        r.IsDBNull(17) ? null : r.GetString(17),
        r.IsDBNull(18) ? null : r.GetString(18),
        r.IsDBNull(19) ? null : r.GetString(19),
        r.FieldCount > 20 && r.GetBoolean(20));

    /// <summary>Rows accepted longer than <paramref name="grace"/> ago that never got a Hangfire job (their API died).</summary>
    public async Task<IReadOnlyList<JobRecord>> FindUndispatchedAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            SELECT {Columns} FROM jobs.job
            WHERE dispatched_at IS NULL AND state IN ('enqueued', 'scheduled') AND created_at < now() - $1
            ORDER BY created_at
            LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(Read, ct);
    }
}
