using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Hangfire;
using Hangfire.Common;
using Hangfire.Logging;
using Hangfire.PostgreSql;
using Hangfire.Server;
using Hangfire.Storage;
using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// Hangfire.PostgreSql's storage with its distributed locks taken as PostgreSQL advisory locks, held by a transaction,
/// instead of rows in its <c>hangfire.lock</c> table; everything else is the wrapped storage's, unchanged.
/// <para>
/// Hangfire takes a job's lock around every state change (Processing before a run, Succeeded or Failed after it), and
/// its schedulers take theirs every poll. Hangfire.PostgreSql 1.21.1 takes one with two transactions on its lock table
/// (delete expired rows, insert its own: four round trips, two commits) and frees it with a third (a delete); a
/// holder that lost its connection — PostgreSQL restarted under it — blocks the resource until the row is
/// <c>DistributedLockTimeout</c> old. Here a lock is <c>pg_advisory_xact_lock</c> in a transaction of a pooled
/// connection of its own: one round trip to take it (its BEGIN and <c>SET LOCAL lock_timeout</c> travel with it),
/// and a COMMIT with nothing to write (no WAL, no fsync) to free it, which the holder does not wait for; it ends with
/// its holder's session, whatever happened to the holder.
/// </para>
/// <para>
/// Hangfire's locks are re-entrant per connection (Hangfire.SqlServer's and Hangfire.PostgreSql's are): the same
/// resource taken again through the same <see cref="IStorageConnection"/> counts, it does not wait on itself. Every
/// process of one database must lock the same way: a process with the stock lock table and one with these would not
/// exclude each other (run one version at a time).
/// </para>
/// </summary>
public sealed class AdvisoryLockStorage : JobStorage
{
    private readonly NpgsqlDataSource _dataSource;

    public AdvisoryLockStorage(PostgreSqlStorage inner, NpgsqlDataSource dataSource)
    {
        Inner = inner;
        _dataSource = dataSource;
        JobExpirationTimeout = inner.JobExpirationTimeout;
    }

    /// <summary>The wrapped storage (queue providers, options).</summary>
    public PostgreSqlStorage Inner { get; }

    public override IMonitoringApi GetMonitoringApi() => Inner.GetMonitoringApi();
    public override IStorageConnection GetConnection() => new Connection((JobStorageConnection)Inner.GetConnection(), _dataSource);
    public override IStorageConnection GetReadOnlyConnection() => new Connection((JobStorageConnection)Inner.GetReadOnlyConnection(), _dataSource);
    public override bool HasFeature(string featureId) => Inner.HasFeature(featureId);
    public override bool LinearizableReads => Inner.LinearizableReads;
    public override void WriteOptionsToLog(ILog logger) => Inner.WriteOptionsToLog(logger);
    public override IEnumerable<IBackgroundProcess> GetStorageWideProcesses() => Inner.GetStorageWideProcesses();
    public override IEnumerable<IBackgroundProcess> GetServerRequiredProcesses() => Inner.GetServerRequiredProcesses();
    [Obsolete("Hangfire.PostgreSql still provides its expiration manager and counters aggregator as components.")]
#pragma warning disable CS0618
    public override IEnumerable<IServerComponent> GetComponents() => Inner.GetComponents();
#pragma warning restore CS0618
    public override IEnumerable<global::Hangfire.States.IStateHandler> GetStateHandlers() => Inner.GetStateHandlers();
    public override string ToString() => Inner.ToString();

    /// <summary>The advisory lock key of a resource: 64 bits of its SHA-256, the same in every process and .NET version.</summary>
    public static long Key(string resource) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("hangfire:" + resource)));

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
                    new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock($1)") { Parameters = { new() { Value = Key(resource) } } },
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

    /// <summary>
    /// A held lock: its transaction and connection. Disposing frees it without waiting for the round trip: the COMMIT
    /// (nothing to write) is sent, and the connection returned to the pool, in the background. The holder's work under
    /// the lock is committed by then, so nothing it wrote can be seen without the lock; the next holder, in this process
    /// or another, simply waits on PostgreSQL until the COMMIT lands. Should the process die first, its session ends and
    /// the lock with it.
    /// </summary>
    internal sealed class AdvisoryLock(NpgsqlConnection connection, NpgsqlTransaction transaction) : IDisposable
    {
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

    /// <summary>The wrapped storage's connection, with <see cref="AcquireDistributedLock"/> ours (re-entrant per connection).</summary>
    private sealed class Connection(JobStorageConnection inner, NpgsqlDataSource dataSource) : JobStorageConnection
    {
        private readonly Dictionary<string, (AdvisoryLock Lock, int Count)> _held = new(StringComparer.Ordinal);

        public override IDisposable AcquireDistributedLock(string resource, TimeSpan timeout)
        {
            ArgumentException.ThrowIfNullOrEmpty(resource);
            lock (_held)
            {
                if (_held.TryGetValue(resource, out var held))
                {
                    _held[resource] = (held.Lock, held.Count + 1);
                    return new Release(this, resource);
                }
            }
            var (taken, job) = Take(dataSource, resource, timeout, JobOfStateLock(resource));
            lock (_held)
            {
                _held[resource] = (taken, 1);
                if (job is not null) _read[resource] = job;
            }
            return new Release(this, resource);
        }

        /// <summary>
        /// The job whose state lock <paramref name="resource"/> is (Hangfire's <c>job:{id}:state-lock</c>): every state
        /// change takes it and then reads the job (<c>BackgroundJobStateChanger</c>), so the read travels with the lock.
        /// </summary>
        private static long? JobOfStateLock(string resource) =>
            resource.StartsWith("job:", StringComparison.Ordinal) && resource.EndsWith(":state-lock", StringComparison.Ordinal)
            && long.TryParse(resource.AsSpan(4, resource.Length - 4 - ":state-lock".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                ? id : null;

        /// <summary>Jobs read with their state lock, by lock: handed out once, to the first read of that job under it.</summary>
        private readonly Dictionary<string, JobData> _read = new(StringComparer.Ordinal);

        public override JobData GetJobData(string jobId)
        {
            lock (_held)
                if (_read.Remove($"job:{jobId}:state-lock", out var read)) return read;
            return inner.GetJobData(jobId);
        }

        private void Free(string resource)
        {
            AdvisoryLock? last = null;
            lock (_held)
            {
                if (!_held.TryGetValue(resource, out var held)) return;
                if (held.Count > 1) _held[resource] = (held.Lock, held.Count - 1);
                else
                {
                    _held.Remove(resource);
                    _read.Remove(resource);
                    last = held.Lock;
                }
            }
            last?.Dispose();
        }

        private sealed class Release(Connection connection, string resource) : IDisposable
        {
            private int _done;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _done, 1) == 0) connection.Free(resource);
            }
        }

        public override void Dispose()
        {
            AdvisoryLock[] left;
            lock (_held)
            {
                left = [.. _held.Values.Select(h => h.Lock)];
                _held.Clear();
            }
            foreach (var held in left) held.Dispose();
            inner.Dispose();
        }

        public override IWriteOnlyTransaction CreateWriteTransaction() => new Transaction((JobStorageTransaction)inner.CreateWriteTransaction());

        // Everything else: the wrapped connection's.
        public override IFetchedJob FetchNextJob(string[] queues, CancellationToken cancellationToken) => inner.FetchNextJob(queues, cancellationToken);
        public override string CreateExpiredJob(Job job, IDictionary<string, string> parameters, DateTime createdAt, TimeSpan expireIn) =>
            inner.CreateExpiredJob(job, parameters, createdAt, expireIn);
        public override StateData GetStateData(string jobId) => inner.GetStateData(jobId);
        public override void SetJobParameter(string id, string name, string value) => inner.SetJobParameter(id, name, value);
        public override string GetJobParameter(string id, string name) => inner.GetJobParameter(id, name);
        public override HashSet<string> GetAllItemsFromSet(string key) => inner.GetAllItemsFromSet(key);
        public override string GetFirstByLowestScoreFromSet(string key, double fromScore, double toScore) => inner.GetFirstByLowestScoreFromSet(key, fromScore, toScore);
        public override List<string> GetFirstByLowestScoreFromSet(string key, double fromScore, double toScore, int count) =>
            inner.GetFirstByLowestScoreFromSet(key, fromScore, toScore, count);
        public override void SetRangeInHash(string key, IEnumerable<KeyValuePair<string, string>> keyValuePairs) => inner.SetRangeInHash(key, keyValuePairs);
        public override Dictionary<string, string> GetAllEntriesFromHash(string key) => inner.GetAllEntriesFromHash(key);
        public override void AnnounceServer(string serverId, ServerContext context) => inner.AnnounceServer(serverId, context);
        public override void RemoveServer(string serverId) => inner.RemoveServer(serverId);
        public override void Heartbeat(string serverId) => inner.Heartbeat(serverId);
        public override int RemoveTimedOutServers(TimeSpan timeOut) => inner.RemoveTimedOutServers(timeOut);
        public override long GetSetCount(string key) => inner.GetSetCount(key);
        public override long GetSetCount(IEnumerable<string> keys, int limit) => inner.GetSetCount(keys, limit);
        public override bool GetSetContains(string key, string value) => inner.GetSetContains(key, value);
        public override List<string> GetRangeFromSet(string key, int startingFrom, int endingAt) => inner.GetRangeFromSet(key, startingFrom, endingAt);
        public override TimeSpan GetSetTtl(string key) => inner.GetSetTtl(key);
        public override long GetCounter(string key) => inner.GetCounter(key);
        public override long GetHashCount(string key) => inner.GetHashCount(key);
        public override TimeSpan GetHashTtl(string key) => inner.GetHashTtl(key);
        public override string GetValueFromHash(string key, string name) => inner.GetValueFromHash(key, name);
        public override long GetListCount(string key) => inner.GetListCount(key);
        public override TimeSpan GetListTtl(string key) => inner.GetListTtl(key);
        public override List<string> GetRangeFromList(string key, int startingFrom, int endingAt) => inner.GetRangeFromList(key, startingFrom, endingAt);
        public override List<string> GetAllItemsFromList(string key) => inner.GetAllItemsFromList(key);
        public override DateTime GetUtcDateTime() => inner.GetUtcDateTime();
    }

    /// <summary>
    /// The wrapped storage's write transaction, less one statement: the <c>PersistJob</c> of a move to Processing.
    /// Hangfire's state machine persists a job (clears its expiry) on every non-final state, so a job moving to
    /// Processing — only ever from Enqueued or Processing, both non-final — has no expiry to clear: the UPDATE changes
    /// nothing and costs a round trip before every run.
    /// </summary>
    private sealed class Transaction(JobStorageTransaction inner) : JobStorageTransaction
    {
        /// <summary>Jobs this transaction moves to Processing (made only when one does: most transactions move none).</summary>
        private HashSet<string>? _processing;

        public override void SetJobState(string jobId, global::Hangfire.States.IState state)
        {
            if (state is global::Hangfire.States.ProcessingState) (_processing ??= new(StringComparer.Ordinal)).Add(jobId);
            inner.SetJobState(jobId, state);
        }

        public override void PersistJob(string jobId)
        {
            if (_processing?.Contains(jobId) != true) inner.PersistJob(jobId);
        }

        public override void Commit() => inner.Commit();
        public override void Dispose() => inner.Dispose();
        public override void ExpireJob(string jobId, TimeSpan expireIn) => inner.ExpireJob(jobId, expireIn);
        public override void AddJobState(string jobId, global::Hangfire.States.IState state) => inner.AddJobState(jobId, state);
        public override void AddToQueue(string queue, string jobId) => inner.AddToQueue(queue, jobId);
        public override void IncrementCounter(string key) => inner.IncrementCounter(key);
        public override void IncrementCounter(string key, TimeSpan expireIn) => inner.IncrementCounter(key, expireIn);
        public override void DecrementCounter(string key) => inner.DecrementCounter(key);
        public override void DecrementCounter(string key, TimeSpan expireIn) => inner.DecrementCounter(key, expireIn);
        public override void AddToSet(string key, string value) => inner.AddToSet(key, value);
        public override void AddToSet(string key, string value, double score) => inner.AddToSet(key, value, score);
        public override void RemoveFromSet(string key, string value) => inner.RemoveFromSet(key, value);
        public override void InsertToList(string key, string value) => inner.InsertToList(key, value);
        public override void RemoveFromList(string key, string value) => inner.RemoveFromList(key, value);
        public override void TrimList(string key, int keepStartingFrom, int keepEndingAt) => inner.TrimList(key, keepStartingFrom, keepEndingAt);
        public override void SetRangeInHash(string key, IEnumerable<KeyValuePair<string, string>> keyValuePairs) => inner.SetRangeInHash(key, keyValuePairs);
        public override void RemoveHash(string key) => inner.RemoveHash(key);
        public override void ExpireSet(string key, TimeSpan expireIn) => inner.ExpireSet(key, expireIn);
        public override void ExpireList(string key, TimeSpan expireIn) => inner.ExpireList(key, expireIn);
        public override void ExpireHash(string key, TimeSpan expireIn) => inner.ExpireHash(key, expireIn);
        public override void PersistSet(string key) => inner.PersistSet(key);
        public override void PersistList(string key) => inner.PersistList(key);
        public override void PersistHash(string key) => inner.PersistHash(key);
        public override void AddRangeToSet(string key, IList<string> items) => inner.AddRangeToSet(key, items);
        public override void RemoveSet(string key) => inner.RemoveSet(key);
    }
}
