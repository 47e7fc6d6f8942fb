using Jobs.Core.Database;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.SingleJobs;

public static class SingleJobsSetup
{
    /// <summary>Single jobs: their stores, submitting in batches, handing them to Hangfire, running them.</summary>
    public static IServiceCollection AddSingleJobs(this IServiceCollection services)
    {
        services.AddSingleton<JobQueries>();
        services.AddSingleton<JobSubmissionStore>();
        services.AddSingleton<JobExecutionStore>();
        services.AddSingleton<JobDispatcher>();
        services.AddSingleton<JobSubmitter>();
        services.AddSingleton<Queue.PausedQueues>();
        services.AddSingleton<RunningJobs>();
        services.AddSingleton<JobCallbackStore>();
        services.AddSingleton<JobAttempt>();
        services.AddSingleton<JobRunTelemetry>();
        services.AddSingleton<JobOutcomeWriter>();
        services.AddSingleton<BatchSharing>();
        services.AddTransient<IRunsJobs, JobRunner>();
        services.AddTransient<Executor>();
        return services;
    }

    /// <summary>
    /// The Hangfire filters of the job feature: each job's own retries (<see cref="RetryFilter"/>) and the dashboard's
    /// Delete and Requeue acting on its rows (<see cref="DashboardStateFilter"/>).
    /// </summary>
    public static IEnumerable<object> HangfireFilters(IServiceProvider services) =>
    [
        new RetryFilter(services.GetRequiredService<DatabaseClock>()),
        new DashboardStateFilter(services.GetRequiredService<NpgsqlDataSource>(), services.GetRequiredService<IOptions<JobsOptions>>().Value.Retention),
    ];
}
