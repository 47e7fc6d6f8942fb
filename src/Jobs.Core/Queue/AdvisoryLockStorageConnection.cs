using System.Globalization;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.Storage;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>The connection of <see cref="AdvisoryLockStorage"/>: the wrapped storage's connection, with <see cref="AcquireDistributedLock"/> ours (re-entrant per connection).</summary>
internal sealed class AdvisoryLockStorageConnection(JobStorageConnection inner, NpgsqlDataSource dataSource) : JobStorageConnection
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
        var (taken, job) = AdvisoryLock.Take(dataSource, resource, timeout, JobOfStateLock(resource));
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

    private sealed class Release(AdvisoryLockStorageConnection connection, string resource) : IDisposable
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

    /// <summary>
    /// PostgreSQL's time: Hangfire's delayed-job and recurring-job schedulers ask for it to decide what is due (issue 26:
    /// a worker whose clock is 10 minutes ahead enqueued delayed jobs and retries 10 minutes early, and fired schedules so).
    /// </summary>
    public override DateTime GetUtcDateTime()
    {
        using var cmd = dataSource.CreateCommand("SELECT now()");
        return DateTime.SpecifyKind((DateTime)cmd.ExecuteScalar()!, DateTimeKind.Utc);
    }

    public override IWriteOnlyTransaction CreateWriteTransaction() => new AdvisoryLockStorageTransaction((JobStorageTransaction)inner.CreateWriteTransaction());

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
}
