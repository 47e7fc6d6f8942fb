using Hangfire.Common;
using Hangfire.Storage;
using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// A held lock: its transaction and connection. Disposing frees it without waiting for the round trip: the COMMIT
/// (nothing to write) is sent, and the connection returned to the pool, in the background. The holder's work under
/// the lock is committed by then, so nothing it wrote can be seen without the lock; the next holder, in this process
/// or another, simply waits on PostgreSQL until the COMMIT lands. Should the process die first, its session ends and
/// the lock with it.
/// </summary>
internal sealed class AdvisoryLock(NpgsqlConnection connection, NpgsqlTransaction transaction) : IDisposable
{
    /// <summary>
    /// Takes the lock of <paramref name="resource"/> in a transaction of its own, waiting at most
    /// <paramref name="timeout"/>. With <paramref name="jobId"/> (a job's state lock), reads that job as
    /// <see cref="IStorageConnection.GetJobData"/> would, under the lock, in the same round trip.
    /// </summary>
    internal static (AdvisoryLock Lock, JobData? Job) Take(NpgsqlDataSource dataSource, string resource, TimeSpan timeout, long? jobId = null)
    {
        var connection = dataSource.OpenConnection();
        try
        {
            var transaction = connection.BeginTransaction();
            using var batch = new NpgsqlBatch(connection, transaction)
            {
                BatchCommands =
                {
                    // SET LOCAL: the wait limit ends with the transaction, so the pooled connection keeps no trace of it.
                    new NpgsqlBatchCommand("SELECT set_config('lock_timeout', $1, true)") { Parameters = { new() { Value = LockTimeout(timeout) } } },
                    new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock($1)") { Parameters = { new() { Value = AdvisoryLockStorage.Key(resource) } } },
                },
            };
            if (jobId is { } id)
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    $"SELECT invocationdata::text, statename, arguments::text, createdat FROM {Migrator.HangfireSchema}.job WHERE id = $1")
                    { Parameters = { new() { Value = id } } });
            JobData? job = null;
            try
            {
                using var reader = batch.ExecuteReader();
                // The lock's result: it is taken (or the wait timed out) when this returns.
                reader.NextResult();
                if (jobId is not null && reader.NextResult() && reader.Read())
                    job = JobDataOf(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2), reader.GetDateTime(3));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
            {
                throw new DistributedLockTimeoutException(resource);
            }
            return (new AdvisoryLock(connection, transaction), job);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A job's row as Hangfire.PostgreSql 1.21.1's <c>GetJobData</c> reads it into <see cref="JobData"/>.</summary>
    private static JobData JobDataOf(string invocationData, string? stateName, string arguments, DateTime createdAt)
    {
        var invocation = SerializationHelper.Deserialize<InvocationData>(invocationData);
        invocation.Arguments = arguments;
        Job? job = null;
        JobLoadException? loadException = null;
        try
        {
            job = invocation.DeserializeJob();
        }
        catch (JobLoadException e)
        {
            loadException = e;
        }
        return new JobData { Job = job, State = stateName, CreatedAt = createdAt, LoadException = loadException };
    }

    /// <summary>PostgreSQL's lock_timeout for a wait of at most <paramref name="timeout"/> (0 would mean no limit).</summary>
    private static string LockTimeout(TimeSpan timeout) =>
        timeout <= TimeSpan.Zero ? "1ms"
        : timeout.TotalMilliseconds >= int.MaxValue ? "0"
        : $"{Math.Max(1, (long)Math.Ceiling(timeout.TotalMilliseconds))}ms";

    public void Dispose() => _ = FreeAsync();

    private async Task FreeAsync()
    {
        try
        {
            await transaction.CommitAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // The session is gone or broken: PostgreSQL released its locks with it.
        }
        finally
        {
            await transaction.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
