using Jobs.Core.Database;
using Jobs.Core.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.SingleJobs;

/// <summary>A job's callback state (jobs.job.callback): who sends it, how its delivery went, and which nobody took.</summary>
public sealed class JobCallbackStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Takes the right to send this finished job's callback and creates <paramref name="sender"/>, the Hangfire job that
    /// sends it, enqueued, in the same statement; false (and no sender) when already taken or there is none. Taken in one
    /// commit and sent by another, a callback whose process died or was cut off between the two stayed "pending" with no
    /// sender for ever, unseen by the rescuer, which looks for callbacks nobody took (the chaos soak on hosts lost 1 of 1,156).
    /// </summary>
    public async Task<bool> ClaimCallbackAsync(Guid id, EnqueuedHangfireJobs.Row sender, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($$"""
            WITH claimed AS (
                UPDATE jobs.job SET callback = '{"status":"pending","attempts":0}'
                WHERE id = $1 AND callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL
                RETURNING id),
            {{EnqueuedHangfireJobs.Ctes(2, onlyIf: "EXISTS (SELECT 1 FROM claimed)")}}
            SELECT (SELECT count(*) FROM claimed), (SELECT count({{EnqueuedHangfireJobs.Notify}}) FROM hangfire_new)
            """);
        cmd.Parameters.Add(new() { Value = id });
        EnqueuedHangfireJobs.AddParameters(cmd.Parameters, [sender]);
        return (long)(await cmd.ExecuteScalarAsync(ct))! == 1;
    }

    public async Task SetCallbackStatusAsync(Guid id, string callbackJson, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("UPDATE jobs.job SET callback = $2::jsonb WHERE id = $1");
        cmd.Parameters.Add(new() { Value = id });
        cmd.Parameters.Add(new() { Value = callbackJson });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Finished jobs whose callback nobody took (their worker died right after finishing them).</summary>
    public async Task<IReadOnlyList<(Guid Id, string Queue)>> FindUnsentCallbacksAsync(TimeSpan grace, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT id, queue FROM jobs.job
            WHERE callback_url IS NOT NULL AND callback IS NULL AND finished_at IS NOT NULL AND finished_at < now() - $1
            ORDER BY finished_at LIMIT $2
            """);
        cmd.Parameters.Add(new() { Value = grace, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = limit });
        return await cmd.ReadListAsync(reader => (reader.GetGuid(0), reader.GetString(1)), ct);
    }
}
