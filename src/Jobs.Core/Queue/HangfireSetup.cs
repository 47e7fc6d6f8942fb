using Hangfire;
using Hangfire.PostgreSql;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// Hangfire's configuration, the one piece of global state Hangfire forces on us (STYLE.md principle 4):
/// every process configures it here, with the filters the job feature hands in.
/// </summary>
public static class HangfireSetup
{
    /// <summary>
    /// The defaults of Hangfire.PostgreSql that would hurt a job queue, changed:
    /// <list type="bullet">
    /// <item>EnableLongPolling: enqueues NOTIFY new_job, so workers of another process wake at once (<see cref="Producer"/>).</item>
    /// <item>Fetching in workers is <see cref="Producer"/>'s: a killed worker's job comes back after Worker:InvisibilityTimeout, not after 30 min.</item>
    /// <item>PrepareSchemaIfNecessary off: the schema belongs to the explicit migrate step (<see cref="Migrator"/>).</item>
    /// <item>Retention: finished jobs live for Jobs:Retention (7 days), not Hangfire's 1 day (<see cref="RetentionFilter"/>).</item>
    /// <item>AutomaticRetry off (Hangfire would retry 10 times): each job's own <c>retries</c> apply instead, through one
    /// of the <paramref name="filters"/> (the job feature's: its retries, and the dashboard's Delete and Requeue acting on its rows).</item>
    /// </list>
    /// </summary>
    public static IServiceCollection AddJobsHangfire(this IServiceCollection services, IConfiguration configuration, CommitDurability commits,
        Func<IServiceProvider, IEnumerable<object>> filters)
    {
        // Hangfire's statements carry what we generate (ids, invocation data), never a client's raw values: prepared automatically.
        var connectionString = DatabaseServiceCollectionExtensions.WithCommitDurability(configuration.GetJobsConnectionString(), commits, autoPrepare: true);

        services.AddHangfire((sp, config) =>
        {
            var jobs = sp.GetRequiredService<IOptions<JobsOptions>>().Value;
            var worker = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            var storage = config
                .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                // Hangfire jobs stored before one of our entry points moved still find it.
                .UseTypeResolver(FormerTypeNames.Resolve)
                .UseRecommendedSerializerSettings()
                // REVIEW: Hangfire.PostgreSql keeps its own connections (from this string) rather than our
                // NpgsqlDataSource; its connection factory contract does not say who opens the connection.
                .UsePostgreSqlStorage(o => o.UseNpgsqlConnection(connectionString), StorageOptions(worker))
                .Entry;
            // Worker processes fetch through our queue (Producer: one owner per fetched job, liveness per process);
            // the API only enqueues, which is the same INSERT + NOTIFY either way.
            sp.GetService<Producer>()?.Attach(storage, worker.EffectiveQueues);
            // Its distributed locks as advisory locks (AdvisoryLockStorage): two round trips and no commit per lock.
            config.UseStorage(new AdvisoryLockStorage(storage, sp.GetRequiredService<NpgsqlDataSource>()));
            // Two of Hangfire's four default filters cost round trips on every job and do nothing here: CaptureCulture
            // reads two job parameters before each run (the culture a job was created in; ours run culture-free), and
            // ContinuationsSupport reads one at each job's end (no Hangfire job here has continuations). Without them
            // a lone job's pickup is two queries shorter (issue 15: the idle path).
            GlobalJobFilters.Filters.Remove<CaptureCultureAttribute>();
            GlobalJobFilters.Filters.Remove<ContinuationsSupportAttribute>();
            config
                .UseFilter(new AutomaticRetryAttribute { Attempts = 0, LogEvents = false })
                .UseFilter(new RetentionFilter(jobs.Retention));
            foreach (var filter in filters(sp)) config.UseFilter(filter);
        });
        return services;
    }

    public static PostgreSqlStorageOptions StorageOptions(WorkerOptions worker) => new()
    {
        SchemaName = Migrator.HangfireSchema,
        PrepareSchemaIfNecessary = false,
        // The API's enqueues NOTIFY new_job only with long polling on; workers fetch through Producer, which
        // listens on one connection per process and replaces the stock fetch, its poll and its per-job keep-alive.
        EnableLongPolling = true,
        QueuePollInterval = TimeSpan.FromSeconds(1),
        UseSlidingInvisibilityTimeout = true,
        // A lock whose holder lost its connection (PostgreSQL restarted) blocks that job's state changes until it
        // is this old: 10 minutes by default.
        DistributedLockTimeout = TimeSpan.FromSeconds(20),
        InvisibilityTimeout = worker.InvisibilityTimeout,
    };
}
