using Jobs.Core.Database;
using Jobs.Core.Queue;
using Jobs.Core.Idempotency;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// What the API (and a schedule firing) does to jobs.job: store submissions, record which Hangfire job carries them,
/// cancel them.
/// </summary>
public sealed class JobSubmissionStore(NpgsqlDataSource dataSource, JobQueries queries, DatabaseClock clock)
{
    /// <summary>
    /// Stores a new job; once this returns it is durable and will run even if the caller dies now. With an
    /// Idempotency-Key, the key and the job are stored in one transaction: a repeat (even a concurrent one,
    /// which waits on the key's unique index) gets the first job back with <c>Created = false</c>. A job due now is
    /// stored dispatched (with its enqueued Hangfire job, <see cref="InsertManyAsync"/>); a delayed one is stored alone,
    /// for the caller to dispatch (<see cref="JobRecord.HangfireJobId"/> null).
    /// </summary>
    public async Task<(JobRecord Job, bool Created)> InsertAsync(NewJob job, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        if (idempotency is not null && await IdempotencyStore.TakeAsync(connection, idempotency, jobId: id, mapId: null, ct) is { } existing)
        {
            await tx.RollbackAsync(ct);
            return (await queries.GetAsync(existing.JobId ?? Guid.Empty, ct) ?? throw new IdempotencyConflictException(idempotency.Key), false);
        }
        if (!(job.RunAt > clock.UtcNow))
        {
            // Due now: stored with the Hangfire job that carries it, enqueued, in this transaction (as a round is).
            var stored = (await StoreEnqueuedAsync(connection, tx, [id], [job], maxBatch: 1, ct))[0];
            await SubmissionOutcomeUnknownException.CommitAsync(tx, "job", [id], ct);
            return (stored, true);
        }
        await using var cmd = new NpgsqlCommand($"""
            INSERT INTO jobs.job (id, function, args, kwargs, queue, state, run_at, timeout_seconds, max_retries, callback_url, schedule_name, trace_parent, tuples)
            VALUES ($1, $2, $3::json, $4::json, $5, CASE WHEN $6::timestamptz > now() THEN 'scheduled' ELSE 'enqueued' END,
                    $6, $7, $8, $9, $10, $11, $12::jsonb)
            RETURNING {JobQueries.Columns}
            """, connection, tx);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = job.Function });
        cmd.Parameters.Add(new() { Value = job.Args });
        cmd.Parameters.Add(new() { Value = job.Kwargs });
        cmd.Parameters.Add(new() { Value = job.Queue });
        cmd.Parameters.Add(new() { Value = (object?)job.RunAt ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = (object?)job.TimeoutSeconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double });
        cmd.Parameters.Add(new() { Value = job.MaxRetries });
        cmd.Parameters.Add(new() { Value = (object?)job.CallbackUrl ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)job.ScheduleName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)job.TraceParent ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)job.Tuples ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var record = (await cmd.ReadFirstOrDefaultAsync(JobQueries.Read, ct))!;
        await SubmissionOutcomeUnknownException.CommitAsync(tx, "job", [id], ct);
        return (record, true);
    }

    /// <summary>
    /// Stores jobs that arrived together (no Idempotency-Key, not delayed) and the Hangfire jobs that carry them
    /// (<see cref="JobDispatcher.Plan"/>: per queue, pieces of at most <paramref name="maxBatch"/>), enqueued, in one
    /// statement and one commit: all durable and dispatched once this returns, in the order given. A lone job's
    /// submission is this one round trip (before: its row, then Hangfire's client in two transactions, then the row
    /// marked dispatched — four commits).
    /// </summary>
    public async Task<IReadOnlyList<JobRecord>> InsertManyAsync(IReadOnlyList<NewJob> jobs, int maxBatch, CancellationToken ct)
    {
        var ids = new Guid[jobs.Count];
        for (var i = 0; i < ids.Length; i++) ids[i] = Guid.CreateVersion7();
        // Opened first: a PostgreSQL that cannot be reached fails here, and then nothing was stored, for certain.
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        try
        {
            return await StoreEnqueuedAsync(connection, null, ids, jobs, maxBatch, ct);
        }
        catch (Exception e) when (SubmissionOutcomeUnknownException.MayHaveCommitted(e))
        {
            // One statement, committed by itself: the connection broke after it was sent, maybe after its commit.
            throw new SubmissionOutcomeUnknownException("job", ids, e);
        }
    }

    /// <summary>
    /// The statement of <see cref="InsertManyAsync"/>: rows <paramref name="ids"/> of <paramref name="jobs"/>, and the
    /// Hangfire jobs that carry them (<see cref="JobDispatcher.Plan"/>), created enqueued, with the workers' NOTIFY.
    /// </summary>
    private static async Task<IReadOnlyList<JobRecord>> StoreEnqueuedAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, Guid[] ids,
        IReadOnlyList<NewJob> jobs, int maxBatch, CancellationToken ct)
    {
        var (owner, hangfireJobs) = JobDispatcher.Plan(ids, jobs, maxBatch);
        await using var cmd = new NpgsqlCommand($"""
            WITH {EnqueuedHangfireJobs.Ctes(14)},
            stored AS (
                INSERT INTO jobs.job (id, function, args, kwargs, queue, state, timeout_seconds, max_retries, callback_url, schedule_name,
                                      trace_parent, tuples, run_at, hangfire_job_id, dispatched_at)
                SELECT t.id, t.function, t.args::json, t.kwargs::json, t.queue, 'enqueued', t.timeout_seconds, t.max_retries, t.callback_url,
                       t.schedule_name, t.trace_parent, t.tuples::jsonb, t.run_at, h.id::text, now()
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::int[], $8::text[], $9::text[],
                            $10::text[], $11::text[], $12::timestamptz[], $13::int[])
                    AS t(id, function, args, kwargs, queue, timeout_seconds, max_retries, callback_url, schedule_name, trace_parent, tuples, run_at, owner)
                JOIN hangfire_new h ON h.ord = t.owner + 1
                RETURNING {JobQueries.Columns})
            SELECT s.* FROM stored s CROSS JOIN (SELECT {EnqueuedHangfireJobs.Notify}) AS woken
            """, connection, tx);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.Function).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.Args).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.Kwargs).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.Queue).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.TimeoutSeconds).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.MaxRetries).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.CallbackUrl).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.ScheduleName).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.TraceParent).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.Tuples).ToArray() });
        cmd.Parameters.Add(new() { Value = jobs.Select(j => j.RunAt is { } at ? DateTime.SpecifyKind(at, DateTimeKind.Utc) : (DateTime?)null).ToArray(),
            NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = owner });
        EnqueuedHangfireJobs.AddParameters(cmd.Parameters, hangfireJobs);
        var byId = (await cmd.ReadListAsync(JobQueries.Read, ct, jobs.Count)).ToDictionary(r => r.Id);
        return ids.Select(id => byId[id]).ToArray();
    }

    /// <summary>Records which Hangfire job carries each row (<paramref name="hangfireJobIds"/>[i] carries <paramref name="ids"/>[i]), so the rescuer leaves them alone.</summary>
    public async Task MarkDispatchedAsync(Guid[] ids, string[] hangfireJobIds, CancellationToken ct)
    {
        // coalesce: the worker may have claimed the row with this very Hangfire job already. SKIP LOCKED: a row
        // locked now is being claimed (which sets dispatched_at itself) or canceled; waiting could deadlock.
        await using var cmd = dataSource.CreateCommand("""
            WITH free AS (SELECT id FROM jobs.job WHERE id = ANY($1) AND dispatched_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED)
            UPDATE jobs.job j SET dispatched_at = now(), hangfire_job_id = coalesce(j.hangfire_job_id, d.hangfire_job_id)
            FROM unnest($1::uuid[], $2::text[]) AS d(id, hangfire_job_id)
            WHERE j.id = d.id AND j.id IN (SELECT id FROM free)
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobIds });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// POST /jobs/{id}/retry: a failed or canceled row goes back to what a submission stores — enqueued, its outcome,
    /// times and crash count cleared, no Hangfire job yet (<c>hangfire_job_id</c> and <c>dispatched_at</c> null) — keeping
    /// its id, arguments, options and attempts. From the commit on it is in situation 1 of <see cref="Queue.Maintenance.Invariants"/>:
    /// the caller dispatches it as the submitter does, and should that not happen the rescuer does. No Hangfire job that
    /// carried it before can touch it any more: they finish and hand back only rows they own, and it has no owner until
    /// its new Hangfire job claims it (an old one re-run — dashboard Requeue, invariant repair — that claims it first
    /// simply runs it; the new one then claims nothing). Returns the row after the change; when it was not failed or
    /// canceled, the row unchanged (<c>Retried</c> false); null when there is no such job.
    /// </summary>
    public async Task<(JobRecord Job, bool Retried)?> ResetForRetryAsync(Guid id, CancellationToken ct)
    {
        await using (var cmd = dataSource.CreateCommand($"""
            UPDATE jobs.job SET state = 'enqueued', result = NULL, error = NULL, progress = NULL, started_at = NULL,
                finished_at = NULL, expires_at = NULL, cancel_requested_at = NULL, run_at = NULL, callback = NULL,
                crashes = 0, worker = NULL, hangfire_job_id = NULL, dispatched_at = NULL
            WHERE id = $1 AND state IN ('failed', 'canceled')
            RETURNING {JobQueries.Columns}
            """))
        {
            cmd.Parameters.Add(new() { Value = id });
            if (await cmd.ReadFirstOrDefaultAsync(JobQueries.Read, ct) is { } retried) return (retried, true);
        }
        return await queries.GetAsync(id, ct, withResult: false) is { } job ? (job, false) : null;
    }

    /// <summary>
    /// DELETE /jobs/{id}: a job not yet running is canceled at once; a running one is marked so that its runner
    /// ends it 'canceled' when its CancellationToken fires. Null when there is no such job.
    /// </summary>
    public async Task<CancelOutcome?> CancelAsync(Guid id, string errorJson, TimeSpan retention, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH before AS (SELECT id, state FROM jobs.job WHERE id = $1 FOR UPDATE),
            changed AS (
                UPDATE jobs.job j SET
                    cancel_requested_at = coalesce(j.cancel_requested_at, now()),
                    state       = CASE WHEN b.state IN ('scheduled', 'enqueued') THEN 'canceled' ELSE j.state END,
                    error       = CASE WHEN b.state IN ('scheduled', 'enqueued') THEN $2::jsonb ELSE j.error END,
                    finished_at = CASE WHEN b.state IN ('scheduled', 'enqueued') THEN now() ELSE j.finished_at END,
                    expires_at  = CASE WHEN b.state IN ('scheduled', 'enqueued') THEN now() + $3 ELSE j.expires_at END
                FROM before b
                WHERE j.id = b.id AND b.state IN ('scheduled', 'enqueued', 'processing')
                RETURNING j.state, j.hangfire_job_id
            ),
            notified AS (SELECT pg_notify('{Channels.JobFinished}', $1::text) FROM changed WHERE state = 'canceled')
            SELECT b.state, c.state, c.hangfire_job_id, (SELECT count(*) FROM notified),
                   (SELECT count(*) = 1 FROM jobs.job o WHERE o.hangfire_job_id = c.hangfire_job_id)
            FROM before b LEFT JOIN changed c ON true
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = errorJson });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        return await cmd.ReadFirstOrDefaultAsync(r => new CancelOutcome(r.GetString(0), r.StringOrNull(1), r.StringOrNull(2), !r.IsDBNull(4) && r.GetBoolean(4)), ct);
    }
}

/// <summary>
/// What DELETE /jobs/{id} found (<paramref name="Before"/>) and left (<paramref name="After"/>, null when the job
/// had already finished). <paramref name="HangfireJobId"/>: the Hangfire job to stop, when there is one.
/// </summary>
/// <param name="HangfireJobCarriesOnlyThis">False when the job's Hangfire job carries a batch: then it must not be deleted.</param>
public sealed record CancelOutcome(string Before, string? After, string? HangfireJobId, bool HangfireJobCarriesOnlyThis);
