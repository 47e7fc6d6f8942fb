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
        attempts, created_at, started_at, finished_at, run_at, timeout_seconds, max_retries, callback_url,
        callback::text, hangfire_job_id
        """;

    /// <summary>
    /// Stores a new job; once this returns it is durable and will run even if the caller dies now. With an
    /// Idempotency-Key, the key and the job are stored in one transaction: a repeat (even a concurrent one,
    /// which waits on the key's unique index) gets the first job back with <c>Created = false</c>.
    /// </summary>
    public async Task<(JobRecord Job, bool Created)> InsertAsync(NewJob job, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        if (idempotency is not null && await ClaimIdempotencyKeyAsync(connection, idempotency, jobId: id, mapId: null, ct) is { } existing)
        {
            await tx.RollbackAsync(ct);
            return (await GetAsync(existing.JobId ?? Guid.Empty, ct) ?? throw new IdempotencyConflictException(idempotency.Key), false);
        }
        await using var cmd = new NpgsqlCommand($"""
            INSERT INTO jobs.job (id, function, args, kwargs, queue, state, run_at, timeout_seconds, max_retries, callback_url, schedule_name, trace_parent)
            VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, CASE WHEN $6::timestamptz > now() THEN 'scheduled' ELSE 'enqueued' END,
                    $6, $7, $8, $9, $10, $11)
            RETURNING {Columns}
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
        JobRecord record;
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            record = Read(reader);
        }
        await SubmissionOutcomeUnknownException.CommitAsync(tx, "job", [id], ct);
        return (record, true);
    }

    /// <summary>
    /// Stores jobs that arrived together (no Idempotency-Key, not delayed) in one statement and one commit: all
    /// durable once this returns, in the order given.
    /// </summary>
    public async Task<IReadOnlyList<JobRecord>> InsertManyAsync(IReadOnlyList<NewJob> jobs, CancellationToken ct)
    {
        var ids = new Guid[jobs.Count];
        for (var i = 0; i < ids.Length; i++) ids[i] = Guid.CreateVersion7();
        // Opened first: a PostgreSQL that cannot be reached fails here, and then nothing was stored, for certain.
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            INSERT INTO jobs.job (id, function, args, kwargs, queue, state, timeout_seconds, max_retries, callback_url, schedule_name, trace_parent)
            SELECT id, function, args::jsonb, kwargs::jsonb, queue, 'enqueued', timeout_seconds, max_retries, callback_url, schedule_name, trace_parent
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::int[], $8::text[], $9::text[], $10::text[])
                AS t(id, function, args, kwargs, queue, timeout_seconds, max_retries, callback_url, schedule_name, trace_parent)
            RETURNING {Columns}
            """, connection);
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
        var byId = new Dictionary<Guid, JobRecord>(jobs.Count);
        try
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var record = Read(reader);
                byId[record.Id] = record;
            }
        }
        catch (Exception e) when (SubmissionOutcomeUnknownException.MayHaveCommitted(e))
        {
            // One statement, committed by itself: the connection broke after it was sent, maybe after its commit.
            throw new SubmissionOutcomeUnknownException("job", ids, e);
        }
        return ids.Select(id => byId[id]).ToArray();
    }

    /// <summary>
    /// Takes the key for this request, or returns what it already stands for. Throws when it stands for a
    /// different request. An expired key is taken over.
    /// </summary>
    internal static async Task<(Guid? JobId, Guid? MapId)?> ClaimIdempotencyKeyAsync(
        NpgsqlConnection connection, IdempotencyClaim claim, Guid? jobId, Guid? mapId, CancellationToken ct)
    {
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO jobs.idempotency_key (key, request_hash, job_id, map_id, expires_at)
            VALUES ($1, $2, $3, $4, now() + $5)
            ON CONFLICT (key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, map_id = EXCLUDED.map_id,
                    created_at = now(), expires_at = EXCLUDED.expires_at
                WHERE jobs.idempotency_key.expires_at < now()
            RETURNING key
            """, connection))
        {
            insert.Parameters.Add(new() { Value = claim.StoredKey });
            insert.Parameters.Add(new() { Value = claim.RequestHash });
            insert.Parameters.Add(new() { Value = (object?)jobId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            insert.Parameters.Add(new() { Value = (object?)mapId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            insert.Parameters.Add(new() { Value = claim.Window, NpgsqlDbType = NpgsqlDbType.Interval });
            if (await insert.ExecuteScalarAsync(ct) is not null) return null;
        }
        // Taken: by a committed request (a concurrent one has committed by now: the insert waited for it).
        await using var select = new NpgsqlCommand("SELECT request_hash, job_id, map_id FROM jobs.idempotency_key WHERE key = $1", connection);
        select.Parameters.Add(new() { Value = claim.StoredKey });
        await using var reader = await select.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct) || !((byte[])reader[0]).AsSpan().SequenceEqual(claim.RequestHash))
            throw new IdempotencyConflictException(claim.Key);
        return (reader.IsDBNull(1) ? null : reader.GetGuid(1), reader.IsDBNull(2) ? null : reader.GetGuid(2));
    }

    /// <summary>Records which Hangfire job carries each row (<paramref name="hangfireJobIds"/>[i] carries <paramref name="ids"/>[i]), so the sweeper leaves them alone.</summary>
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

    public async Task<JobRecord?> GetAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    /// <summary>The rows a Hangfire job carries (more than one when submissions were batched), in submission order.</summary>
    public async Task<IReadOnlyList<JobRecord>> GetByHangfireJobIdAsync(string hangfireJobId, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT {Columns} FROM jobs.job WHERE hangfire_job_id = $1 ORDER BY id LIMIT $2");
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = limit });
        var list = new List<JobRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(Read(reader));
        return list;
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
    /// Takes the rows <paramref name="ids"/> for one run by Hangfire job <paramref name="hangfireJobId"/>, in one
    /// statement; returns those claimed, in the order given. The first Hangfire job to claim a row owns it; a
    /// duplicate dispatch gets nothing and must not run the function. A row still 'processing' is claimable again
    /// by its owner: that is the re-run after its worker died (<see cref="ClaimedJob.Resumed"/>), and counts as a crash.
    /// A claim counts an attempt only if the job will run: one whose crashes reach <paramref name="maxCrashes"/>
    /// (Jobs:MaxWorkerCrashes) is claimed only to be failed with WorkerCrashedException, so a quarantined job's attempts
    /// is its number of runs. (Known gap: a batch member released unstarted at a graceful stop, or claimed by a batch
    /// whose worker died before reaching it, keeps its claim's attempt.)
    /// </summary>
    public async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(Guid[] ids, string hangfireJobId, string worker, int maxCrashes, CancellationToken ct)
    {
        // A graceful stop hands rows back as 'enqueued' first, so a row found 'processing' means a dead worker.
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job j
            SET state = 'processing', attempts = j.attempts + CASE WHEN before.crashes < $4 THEN 1 ELSE 0 END,
                started_at = now(), worker = $3, crashes = before.crashes,
                hangfire_job_id = $2, dispatched_at = coalesce(j.dispatched_at, now()), progress = NULL
            FROM (SELECT id, state, crashes + CASE WHEN state = 'processing' THEN 1 ELSE 0 END AS crashes
                  FROM jobs.job WHERE id = ANY($1) ORDER BY id FOR UPDATE) before -- in id order: no deadlock with another claim
            WHERE j.id = before.id
              AND (j.hangfire_job_id IS NULL OR j.hangfire_job_id = $2)
              AND j.state IN ('scheduled', 'enqueued', 'processing')
              AND j.cancel_requested_at IS NULL
            RETURNING j.id, j.function, j.args::text, j.kwargs::text, j.queue, j.attempts, j.timeout_seconds, j.max_retries,
                      j.callback_url, j.crashes, before.state = 'processing', greatest(j.created_at, coalesce(j.run_at, j.created_at)), j.trace_parent
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        cmd.Parameters.Add(new() { Value = maxCrashes });
        var byId = new Dictionary<Guid, ClaimedJob>(ids.Length);
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                byId[reader.GetGuid(0)] = new ClaimedJob(reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                    reader.GetString(4), reader.GetInt32(5), reader.IsDBNull(6) ? null : reader.GetDouble(6), reader.GetInt32(7),
                    reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetInt32(9), reader.GetBoolean(10),
                    DateTime.SpecifyKind(reader.GetDateTime(11), DateTimeKind.Utc), reader.IsDBNull(12) ? null : reader.GetString(12));
        return ids.Where(byId.ContainsKey).Select(id => byId[id]).ToArray();
    }

    /// <summary>
    /// Gives claimed rows back unrun, as if just submitted (no owner, not dispatched), for the caller to dispatch
    /// in a Hangfire job of their own: how a long batch shares its tail with idle workers. The attempt their claim
    /// counted (none if <paramref name="maxCrashes"/> was reached, as in <see cref="ClaimAsync"/>) is taken back.
    /// </summary>
    public async Task<IReadOnlyList<JobRecord>> HandBackAsync(Guid[] ids, string hangfireJobId, int maxCrashes, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            UPDATE jobs.job SET state = 'enqueued', attempts = attempts - CASE WHEN crashes < $3 THEN 1 ELSE 0 END,
                                started_at = NULL, worker = NULL, progress = NULL, hangfire_job_id = NULL, dispatched_at = NULL
            WHERE id = ANY($1) AND hangfire_job_id = $2 AND state = 'processing'
            RETURNING {Columns}
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = maxCrashes });
        var list = new List<JobRecord>(ids.Length);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(Read(reader));
        return list;
    }

    /// <summary>
    /// Writes the outcomes of a batch's runs in one statement, and wakes the API requests waiting for them.
    /// Only rows still 'processing' under <paramref name="hangfireJobId"/> change. An outcome's
    /// <see cref="JobOutcome.NewOwner"/> hands its row to another Hangfire job (a retry's, or a failure's
    /// dashboard entry). Returns the ids that changed.
    /// </summary>
    public async Task<IReadOnlySet<Guid>> FinishAsync(string hangfireJobId, IReadOnlyList<JobOutcome> outcomes, TimeSpan retention, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH o AS (
                SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::float8[], $6::text[]) AS o(id, state, json, retry_seconds, owner)
            ),
            done AS (
                UPDATE jobs.job j SET
                    state           = o.state,
                    result          = CASE WHEN o.state = 'succeeded' THEN o.json::jsonb ELSE j.result END,
                    error           = CASE WHEN o.state = 'succeeded' THEN NULL WHEN o.json IS NULL THEN j.error ELSE o.json::jsonb END,
                    finished_at     = CASE WHEN o.state IN ('succeeded', 'failed', 'canceled') THEN now() ELSE j.finished_at END,
                    expires_at      = CASE WHEN o.state IN ('succeeded', 'failed', 'canceled') THEN now() + $7 ELSE j.expires_at END,
                    run_at          = CASE WHEN o.state = 'scheduled' THEN now() + o.retry_seconds * interval '1 second' ELSE j.run_at END,
                    progress        = CASE WHEN o.state IN ('scheduled', 'enqueued') THEN NULL ELSE j.progress END,
                    hangfire_job_id = coalesce(o.owner, j.hangfire_job_id)
                FROM o
                WHERE j.id = o.id AND j.hangfire_job_id = $1 AND j.state = 'processing'
                RETURNING j.id, j.state
            ),
            notified AS (SELECT pg_notify('{FinishedChannel}', id::text) FROM done WHERE state IN ('succeeded', 'failed', 'canceled'))
            SELECT id, (SELECT count(*) FROM notified) FROM done
            """);
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.Id).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.State).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.Json).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.RetryIn?.TotalSeconds).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.NewOwner).ToArray() });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        var changed = new HashSet<Guid>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) changed.Add(reader.GetGuid(0));
        return changed;
    }

    /// <summary>
    /// Ends as canceled those of <paramref name="ids"/> that DELETE /jobs/{id} asked to stop but that are still unfinished
    /// and no other Hangfire job owns: a canceled row is never claimed again, so its end must be written here.
    /// </summary>
    public async Task EndCanceledAsync(Guid[] ids, string hangfireJobId, TimeSpan retention, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH done AS (
                UPDATE jobs.job SET state = 'canceled', finished_at = now(), expires_at = now() + $3, progress = NULL,
                    error = jsonb_build_object('type', $4::text, 'message', function || $5::text, 'stackTrace', '')
                WHERE id = ANY($1) AND cancel_requested_at IS NOT NULL AND state IN ('scheduled', 'enqueued', 'processing')
                  AND (hangfire_job_id IS NULL OR hangfire_job_id = $2)
                RETURNING id),
            notified AS (SELECT pg_notify('{FinishedChannel}', id::text) FROM done)
            SELECT count(*) FROM notified
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = typeof(Execution.JobCanceledException).FullName! });
        cmd.Parameters.Add(new() { Value = new Execution.JobCanceledException("").Message });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Which of these running jobs DELETE /jobs/{id} asked to stop.</summary>
    public async Task<IReadOnlyList<Guid>> FindCancelRequestedAsync(Guid[] ids, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT id FROM jobs.job WHERE id = ANY($1) AND cancel_requested_at IS NOT NULL");
        cmd.Parameters.Add(new() { Value = ids });
        var list = new List<Guid>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(reader.GetGuid(0));
        return list;
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
            notified AS (SELECT pg_notify('{FinishedChannel}', $1::text) FROM changed WHERE state = 'canceled')
            SELECT b.state, c.state, c.hangfire_job_id, (SELECT count(*) FROM notified),
                   (SELECT count(*) = 1 FROM jobs.job o WHERE o.hangfire_job_id = c.hangfire_job_id)
            FROM before b LEFT JOIN changed c ON true
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = errorJson });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) return null;
        return new CancelOutcome(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
            !reader.IsDBNull(4) && reader.GetBoolean(4));
    }

    /// <summary>Whether DELETE /jobs/{id} asked this job to stop.</summary>
    public async Task<bool> IsCancelRequestedAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT cancel_requested_at IS NOT NULL FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>Takes the right to send this finished job's callback; false when already taken or there is none.</summary>
    public async Task<bool> ClaimCallbackAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job SET callback = '{"status":"pending","attempts":0}'
            WHERE id = $1 AND callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL
            """);
        cmd.Parameters.Add(new() { Value = id });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task SetCallbackStatusAsync(Guid id, string callbackJson, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("UPDATE jobs.job SET callback = $2::jsonb WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = callbackJson });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Finished jobs whose callback nobody took (their worker died right after finishing them).</summary>
    public async Task<IReadOnlyList<Guid>> FindUnsentCallbacksAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id FROM jobs.job
            WHERE callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL AND finished_at < now() - $1
            ORDER BY finished_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        var ids = new List<Guid>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetGuid(0));
        return ids;
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
        var list = new List<JobRecord>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(Read(reader));
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

    /// <summary>Forgets Idempotency-Keys whose window is over.</summary>
    public async Task<int> PurgeExpiredIdempotencyKeysAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM jobs.idempotency_key WHERE expires_at < now()");
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private static JobRecord Read(NpgsqlDataReader r) => new(
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
        r.IsDBNull(18) ? null : r.GetString(18));
}

/// <summary>
/// What DELETE /jobs/{id} found (<paramref name="Before"/>) and left (<paramref name="After"/>, null when the job
/// had already finished). <paramref name="HangfireJobId"/>: the Hangfire job to stop, when there is one.
/// </summary>
/// <param name="HangfireJobCarriesOnlyThis">False when the job's Hangfire job carries a batch: then it must not be deleted.</param>
public sealed record CancelOutcome(string Before, string? After, string? HangfireJobId, bool HangfireJobCarriesOnlyThis);
