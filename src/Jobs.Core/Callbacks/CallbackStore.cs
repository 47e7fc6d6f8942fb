using Npgsql;

namespace Jobs.Core.Callbacks;

/// <summary>A job's callback state (jobs.job.callback): who sends it, and how its delivery went.</summary>
public sealed class CallbackStore(NpgsqlDataSource dataSource)
{
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
}
