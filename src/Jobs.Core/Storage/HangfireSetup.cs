using Hangfire;
using Hangfire.PostgreSql;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Execution;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Storage;

/// <summary>
/// Hangfire's configuration, the one piece of global state Hangfire forces on us (STYLE.md principle 4):
/// every process configures it here and nowhere else.
/// </summary>
public static class HangfireSetup
{
    /// <summary>
    /// The defaults of Hangfire.PostgreSql that would hurt a job queue, changed:
    /// <list type="bullet">
    /// <item>EnableLongPolling: LISTEN/NOTIFY wakes workers of another process at once instead of after QueuePollInterval (15 s).</item>
    /// <item>UseSlidingInvisibilityTimeout: a killed worker's job comes back after InvisibilityTimeout without a heartbeat, not after 30 min.</item>
    /// <item>PrepareSchemaIfNecessary off: the schema belongs to the explicit migrate step (<see cref="Migrator"/>).</item>
    /// <item>Retention: finished jobs live for Jobs:Retention (7 days), not Hangfire's 1 day (<see cref="RetentionFilter"/>).</item>
    /// <item>AutomaticRetry off (Hangfire would retry 10 times): each job's own <c>retries</c> apply instead (<see cref="RetryFilter"/>).</item>
    /// </list>
    /// </summary>
    public static IServiceCollection AddJobsHangfire(this IServiceCollection services, IConfiguration configuration, CommitDurability commits)
    {
        services.AddValidatedOptions<JobsOptions>(JobsOptions.Section);
        services.AddValidatedOptions<WorkerOptions>(WorkerOptions.Section)
            .Validate(o => o.Queues.All(QueueNames.IsValid), $"Worker:Queues: {QueueNames.Rule}.");
        var connectionString = DatabaseServiceCollectionExtensions.WithCommitDurability(configuration.GetJobsConnectionString(), commits);

        services.AddHangfire((sp, config) =>
        {
            var jobs = sp.GetRequiredService<IOptions<JobsOptions>>().Value;
            var worker = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            config
                .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings()
                // REVIEW: Hangfire.PostgreSql keeps its own connections (from this string) rather than our
                // NpgsqlDataSource; its connection factory contract does not say who opens the connection.
                .UsePostgreSqlStorage(o => o.UseNpgsqlConnection(connectionString), StorageOptions(worker))
                .UseFilter(new AutomaticRetryAttribute { Attempts = 0, LogEvents = false })
                .UseFilter(new RetryFilter())
                .UseFilter(new RetentionFilter(jobs.Retention));
        });
        return services;
    }

    public static PostgreSqlStorageOptions StorageOptions(WorkerOptions worker) => new()
    {
        SchemaName = Migrator.HangfireSchema,
        PrepareSchemaIfNecessary = false,
        EnableLongPolling = true,
        // With long polling the poll is only the fallback should a notification be missed; it is also how
        // idle workers find a job whose worker died (invisible for InvisibilityTimeout), so keep it short.
        QueuePollInterval = TimeSpan.FromSeconds(1),
        UseSlidingInvisibilityTimeout = true,
        // A lock whose holder lost its connection (PostgreSQL restarted) blocks that job's state changes until it
        // is this old: 10 minutes by default.
        DistributedLockTimeout = TimeSpan.FromSeconds(20),
        InvisibilityTimeout = worker.InvisibilityTimeout,
    };
}
