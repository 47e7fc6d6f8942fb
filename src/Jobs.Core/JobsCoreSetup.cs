using Jobs.Core.Callbacks;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Functions;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Jobs.Core.Maps;
using Jobs.Core.Schedules;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core;

public static class JobsCoreSetup
{
    /// <summary>
    /// What the API and the workers share, feature by feature: the database, Hangfire (storage and client, with the job
    /// feature's filters), the function registry, metrics, and jobs, callbacks, maps and schedules. Each process calls
    /// this itself (the API with <see cref="CommitDurability.Durable"/>, workers with <see cref="CommitDurability.Relaxed"/>),
    /// then adds what only it does.
    /// </summary>
    public static IServiceCollection AddJobsCore(this IServiceCollection services, IConfiguration configuration, CommitDurability commits)
    {
        // Options, bound once: Jobs:* is both processes', validated in each; Worker:* is read by the API too (its
        // InvisibilityTimeout, the queues it knows) but validated only by the workers, whose settings they are.
        services.AddValidatedOptions<JobsOptions>(JobsOptions.Section).PostConfigure<IConfiguration>(JobsOptions.ApplyFormerKeys)
            .Validate(o => o.Queues.All(QueueNames.IsValidDeclaration), $"Jobs:Queues: {QueueNames.Rule}, or such a prefix followed by '*'.");
        services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section);
        services.AddJobsDatabase(configuration, commits);
        services.AddJobsHangfire(configuration, commits, SingleJobsSetup.HangfireFilters);
        services.AddSingleton<Notifier>(); // the process's one LISTEN connection
        services.AddSingleton<JobQueueStore>();
        services.AddJobFunctions();
        services.AddSingleton<JobsMetrics>();
        services.AddSingleJobs();
        services.AddCallbacks();
        services.AddMaps();
        services.AddSchedules();
        return services;
    }
}
