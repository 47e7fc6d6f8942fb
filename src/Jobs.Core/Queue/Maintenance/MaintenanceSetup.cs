using Jobs.Core.SingleJobs;
using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core.Queue.Maintenance;

public static class MaintenanceSetup
{
    /// <summary>
    /// What every worker process runs beside its Hangfire server: the <see cref="Rescuer"/>, the <see cref="Cleaner"/>, and
    /// the check for cancels of the jobs it runs (<see cref="CancelWatcher"/>). Each is safe to run in many processes at once.
    /// </summary>
    public static IServiceCollection AddQueueMaintenance(this IServiceCollection services)
    {
        services.AddSingleton<Invariants>();
        services.AddHostedService<Rescuer>();
        services.AddHostedService<Cleaner>();
        services.AddHostedService<CancelWatcher>();
        return services;
    }
}
