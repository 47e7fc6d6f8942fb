using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// What a worker does to jobs.job while it runs them: claim, hand back, write outcomes and progress, notice cancels.
/// Only the run that claimed a row last — its Hangfire job (the owner) and its run id — changes it.
/// </summary>
public sealed class JobExecutionStore(NpgsqlDataSource dataSource)
{
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
    /// <param name="run">The run's own id (<c>jobs.job.run_id</c>): its later writes must name it, so a run whose job was rescued
    /// and claimed again (its worker cut off) changes nothing when it comes back.</param>
    public async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(Guid[] ids, string hangfireJobId, string worker, int maxCrashes, CancellationToken ct,
        Guid? run = null)
    {
        // A graceful stop hands rows back as 'enqueued' first, so a row found 'processing' means a dead worker.
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job j
            SET state = 'processing', attempts = j.attempts + CASE WHEN before.crashes < $4 THEN 1 ELSE 0 END,
                started_at = now(), worker = $3, crashes = before.crashes,
                hangfire_job_id = $2, dispatched_at = coalesce(j.dispatched_at, now()), progress = NULL, run_id = $5
            FROM (SELECT id, state, crashes + CASE WHEN state = 'processing' THEN 1 ELSE 0 END AS crashes
                  FROM jobs.job WHERE id = ANY($1) ORDER BY id FOR UPDATE) before -- in id order: no deadlock with another claim
            WHERE j.id = before.id
              AND (j.hangfire_job_id IS NULL OR j.hangfire_job_id = $2)
              AND j.state IN ('scheduled', 'enqueued', 'processing')
              AND j.cancel_requested_at IS NULL
            RETURNING j.id, j.function, j.args::text, j.kwargs::text, j.queue, j.attempts, j.timeout_seconds, j.max_retries,
                      j.callback_url, j.crashes, before.state = 'processing', greatest(j.created_at, coalesce(j.run_at, j.created_at)), j.trace_parent,
                      (j.tuples - 'result')::text
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = worker });
        cmd.Parameters.Add(new() { Value = maxCrashes });
        cmd.Parameters.Add(Parameters.Uuid(run));
        var byId = (await cmd.ReadListAsync(r => new ClaimedJob(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3),
                r.GetString(4), r.GetInt32(5), r.DoubleOrNull(6), r.GetInt32(7), r.StringOrNull(8), r.GetInt32(9), r.GetBoolean(10),
                DateTime.SpecifyKind(r.GetDateTime(11), DateTimeKind.Utc), r.StringOrNull(12), r.StringOrNull(13)), ct, ids.Length))
            .ToDictionary(j => j.Id);
        return ids.Where(byId.ContainsKey).Select(id => byId[id]).ToArray();
    }

    /// <summary>
    /// Gives claimed rows back unrun, as if just submitted (no owner, not dispatched), for the caller to dispatch
    /// in a Hangfire job of their own: how a long batch shares its tail with idle workers. The attempt their claim
    /// counted (none if <paramref name="maxCrashes"/> was reached, as in <see cref="ClaimAsync"/>) is taken back.
    /// </summary>
    public async Task<IReadOnlyList<JobRecord>> HandBackAsync(Guid[] ids, string hangfireJobId, int maxCrashes, CancellationToken ct, Guid? run = null)
    {
        await using var cmd = dataSource.CreateCommand($"""
            UPDATE jobs.job SET state = 'enqueued', attempts = attempts - CASE WHEN crashes < $3 THEN 1 ELSE 0 END,
                                started_at = NULL, worker = NULL, progress = NULL, hangfire_job_id = NULL, dispatched_at = NULL, run_id = NULL
            WHERE id = ANY($1) AND hangfire_job_id = $2 AND state = 'processing' AND run_id IS NOT DISTINCT FROM $4
            RETURNING {JobQueries.Columns}
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = maxCrashes });
        cmd.Parameters.Add(Parameters.Uuid(run));
        return await cmd.ReadListAsync(JobQueries.Read, ct, ids.Length);
    }

    /// <summary>
    /// Writes the outcomes of a batch's runs in one statement, and wakes the API requests waiting for them.
    /// Only rows still 'processing' under <paramref name="hangfireJobId"/>, claimed by <paramref name="run"/>, change. An outcome's
    /// <see cref="JobOutcome.NewOwner"/> hands its row to another Hangfire job (a retry's, or a failure's
    /// dashboard entry). Returns the ids that changed.
    /// </summary>
    public async Task<IReadOnlySet<Guid>> FinishAsync(string hangfireJobId, IReadOnlyList<JobOutcome> outcomes, TimeSpan retention, CancellationToken ct,
        Guid? run = null)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH o AS (
                SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::float8[], $6::text[], $8::text[])
                    AS o(id, state, json, retry_seconds, owner, result_tuples)
            ),
            done AS (
                UPDATE jobs.job j SET
                    state           = o.state,
                    result          = CASE WHEN o.state = 'succeeded' THEN o.json::json ELSE j.result END,
                    tuples          = CASE WHEN o.state <> 'succeeded' THEN j.tuples
                                           WHEN o.result_tuples IS NULL THEN nullif(j.tuples - 'result', jsonb_build_object())
                                           ELSE coalesce(j.tuples, jsonb_build_object()) || jsonb_build_object('result', o.result_tuples::jsonb) END,
                    error           = CASE WHEN o.state = 'succeeded' THEN NULL WHEN o.json IS NULL THEN j.error ELSE o.json::jsonb END,
                    finished_at     = CASE WHEN o.state IN ('succeeded', 'failed', 'canceled') THEN now() ELSE j.finished_at END,
                    expires_at      = CASE WHEN o.state IN ('succeeded', 'failed', 'canceled') THEN now() + $7 ELSE j.expires_at END,
                    run_at          = CASE WHEN o.state = 'scheduled' THEN now() + o.retry_seconds * interval '1 second' ELSE j.run_at END,
                    progress        = CASE WHEN o.state IN ('scheduled', 'enqueued') THEN NULL ELSE j.progress END,
                    hangfire_job_id = coalesce(o.owner, j.hangfire_job_id)
                FROM o
                WHERE j.id = o.id AND j.hangfire_job_id = $1 AND j.state = 'processing' AND j.run_id IS NOT DISTINCT FROM $9
                RETURNING j.id, j.state
            ),
            notified AS (SELECT pg_notify('{Channels.JobFinished}', id::text) FROM done WHERE state IN ('succeeded', 'failed', 'canceled'))
            SELECT id, (SELECT count(*) FROM notified) FROM done
            """);
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.Id).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.State).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.Json).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.RetryIn?.TotalSeconds).ToArray() });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.NewOwner).ToArray() });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = outcomes.Select(o => o.ResultTuples).ToArray() });
        cmd.Parameters.Add(Parameters.Uuid(run));
        return (await cmd.ReadListAsync(r => r.GetGuid(0), ct)).ToHashSet();
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
            notified AS (SELECT pg_notify('{Channels.JobFinished}', id::text) FROM done)
            SELECT count(*) FROM notified
            """);
        cmd.Parameters.Add(new() { Value = ids });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        var canceled = new JobCanceledException("");
        cmd.Parameters.Add(new() { Value = canceled.Type });
        cmd.Parameters.Add(new() { Value = canceled.Message });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Which of these running jobs DELETE /jobs/{id} asked to stop.</summary>
    public async Task<IReadOnlyList<Guid>> FindCancelRequestedAsync(Guid[] ids, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT id FROM jobs.job WHERE id = ANY($1) AND cancel_requested_at IS NOT NULL");
        cmd.Parameters.Add(new() { Value = ids });
        return await cmd.ReadListAsync(reader => reader.GetGuid(0), ct);
    }

    /// <summary>Whether DELETE /jobs/{id} asked this job to stop.</summary>
    public async Task<bool> IsCancelRequestedAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT cancel_requested_at IS NOT NULL FROM jobs.job WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    public async Task ReportProgressAsync(Guid id, string hangfireJobId, string progressJson, CancellationToken ct, Guid? run = null)
    {
        await using var cmd = dataSource.CreateCommand("""
            UPDATE jobs.job SET progress = $3::jsonb
            WHERE id = $1 AND hangfire_job_id = $2 AND state = 'processing' AND run_id IS NOT DISTINCT FROM $4
            """);
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        cmd.Parameters.Add(new() { Value = progressJson });
        cmd.Parameters.Add(Parameters.Uuid(run));
        await cmd.ExecuteNonQueryAsync(ct);
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
}
