using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Idempotency;

/// <summary>jobs.idempotency_key: an Idempotency-Key is taken in the transaction that stores what it stands for (a job or a map).</summary>
public static class IdempotencyStore
{
    /// <summary>
    /// Takes the key for this request, or returns what it already stands for. Throws when it stands for a
    /// different request. An expired key is taken over.
    /// </summary>
    internal static async Task<(Guid? JobId, Guid? MapId)?> TakeAsync(
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

    /// <summary>Forgets Idempotency-Keys whose window is over (the cleaner, every minute).</summary>
    public static async Task<int> PurgeExpiredAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("DELETE FROM jobs.idempotency_key WHERE expires_at < now()");
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
