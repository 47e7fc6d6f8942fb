using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core.Execution;

public static class ExecutionServiceCollectionExtensions
{
    /// <summary>
    /// What the API and the workers share: the database, Hangfire (storage and client), the function registry,
    /// and storing, dispatching, running and calling back jobs.
    /// </summary>
    public static IServiceCollection AddJobsCore(this IServiceCollection services, IConfiguration configuration, CommitDurability commits)
    {
        services.AddJobsDatabase(configuration, commits);
        services.AddJobsHangfire(configuration, commits);
        services.AddJobFunctions();
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobDispatcher>();
        services.AddSingleton<JobSubmitter>();
        services.AddTransient<JobRunner>();
        services.AddSingleton<RunningJobs>();
        services.AddSingleton<Telemetry.JobsMetrics>();
        services.AddSingleton<MapStore>();
        services.AddTransient<MapChunkRunner>();
        services.AddTransient<CallbackSender>();
        services.AddSingleton<ScheduleStore>();
        services.AddTransient<ScheduleRunner>();
        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section);
        // Callbacks go only where Callbacks:AllowedHosts says; a redirect must not take them elsewhere.
        services.AddHttpClient(CallbackSender.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });
        return services;
    }
}
