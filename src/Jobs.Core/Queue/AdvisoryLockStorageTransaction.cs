using Hangfire.Storage;

namespace Jobs.Core.Queue;

/// <summary>
/// The write transaction of <see cref="AdvisoryLockStorage"/>: the wrapped storage's, less one statement: the <c>PersistJob</c> of a move to Processing.
/// Hangfire's state machine persists a job (clears its expiry) on every non-final state, so a job moving to
/// Processing — only ever from Enqueued or Processing, both non-final — has no expiry to clear: the UPDATE changes
/// nothing and costs a round trip before every run.
/// </summary>
internal sealed class AdvisoryLockStorageTransaction(JobStorageTransaction inner) : JobStorageTransaction
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
