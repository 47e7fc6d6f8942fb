using Hangfire.States;
using Hangfire.Storage;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Carries the Hangfire dashboard's actions to the rows a Hangfire job carries, so that they go through the same
/// owner as everything else (see <see cref="Queue.Maintenance.Invariants"/>): <b>Delete</b> cancels the job (a queued one at
/// once; a running one through its token, or, when its worker is gone, when the repair re-runs its Hangfire job and
/// the runner finds it canceled); <b>Requeue</b> of a finished job re-runs its row. Without this, a deleted Hangfire
/// job left its row waiting for ever, and a requeued one showed Succeeded while the row stayed failed (issue 11).
/// </summary>
// REVIEW: runs on its own connection just before Hangfire commits the state change; were that commit to fail, the
// row would be canceled (or re-run) without the dashboard's change. Hangfire's write-only transaction offers no way
// to add our statement to it.
public sealed class DashboardStateFilter(NpgsqlDataSource dataSource, TimeSpan retention) : IApplyStateFilter
{
    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
        var hangfireJobId = context.BackgroundJob.Id;
        if (context.NewState is DeletedState { Reason: not StateReasons.Retired })
            Run($"""
                WITH done AS (
                    UPDATE jobs.job SET cancel_requested_at = coalesce(cancel_requested_at, now()),
                        state       = CASE WHEN state IN ('scheduled', 'enqueued') THEN 'canceled' ELSE state END,
                        error       = CASE WHEN state IN ('scheduled', 'enqueued') THEN $2::jsonb ELSE error END,
                        finished_at = CASE WHEN state IN ('scheduled', 'enqueued') THEN now() ELSE finished_at END,
                        expires_at  = CASE WHEN state IN ('scheduled', 'enqueued') THEN now() + $3 ELSE expires_at END
                    WHERE hangfire_job_id = $1 AND state IN ('scheduled', 'enqueued', 'processing')
                    RETURNING id, state),
                notified AS (SELECT pg_notify('{Channels.JobFinished}', id::text) FROM done WHERE state = 'canceled')
                SELECT count(*) FROM notified
                """, hangfireJobId, ErrorJson.Of(typeof(JobCanceledException), "Canceled by deleting its Hangfire job in the dashboard."));
        // Not the invariant watch's repair of a Hangfire job that ended without its rows' outcome: that one re-runs
        // only the rows still waiting, and must not reset siblings of a batch that did finish.
        else if (context.NewState is EnqueuedState { Reason: not StateReasons.Repair } && context.OldStateName is "Succeeded" or "Failed" or "Deleted")
            Run("""
                UPDATE jobs.job SET state = 'enqueued', result = NULL, error = NULL, progress = NULL, started_at = NULL,
                    finished_at = NULL, expires_at = NULL, cancel_requested_at = NULL, run_at = NULL, callback = NULL
                WHERE hangfire_job_id = $1 AND state IN ('succeeded', 'failed', 'canceled')
                """, hangfireJobId, null);
    }

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction) { }

    private void Run(string sql, string hangfireJobId, string? error)
    {
        using var cmd = dataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = hangfireJobId });
        if (error is not null)
        {
            cmd.Parameters.Add(new() { Value = error });
            cmd.Parameters.Add(new() { Value = retention, NpgsqlDbType = NpgsqlDbType.Interval });
        }
        cmd.ExecuteNonQuery();
    }
}
