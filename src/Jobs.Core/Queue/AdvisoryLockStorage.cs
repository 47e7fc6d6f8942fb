using System.Security.Cryptography;
using System.Text;
using Hangfire;
using Hangfire.Logging;
using Hangfire.PostgreSql;
using Hangfire.Server;
using Hangfire.Storage;
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
    public override IStorageConnection GetConnection() => new AdvisoryLockStorageConnection((JobStorageConnection)Inner.GetConnection(), _dataSource);
    public override IStorageConnection GetReadOnlyConnection() => new AdvisoryLockStorageConnection((JobStorageConnection)Inner.GetReadOnlyConnection(), _dataSource);
    /// <summary>
    /// The storage's features, and one more: its clock (<see cref="AdvisoryLockStorageConnection.GetUtcDateTime"/>), so
    /// Hangfire's schedulers decide what is due by PostgreSQL's time, not by a worker's own clock, which may be off.
    /// </summary>
    public override bool HasFeature(string featureId) =>
        featureId == JobStorageFeatures.Connection.GetUtcDateTime || Inner.HasFeature(featureId);
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
}
