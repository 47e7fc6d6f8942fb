using Jobs.Core.Queue;

namespace Jobs.Worker.Maintenance;

internal static class MaintenanceSetup
{
    /// <summary>Housekeeping that every worker process runs; each task is safe to run in many processes at once.</summary>
    public static IServiceCollection AddJobsMaintenance(this IServiceCollection services)
    {
        services.AddHostedService<DispatchSweeper>();
        services.AddHostedService<RetentionPurger>();
        services.AddSingleton<HousekeepingStore>();
        services.AddSingleton<Invariants>();
        services.AddHostedService<InvariantWatch>();
        services.AddHostedService<CancelWatcher>();
        return services;
    }
}
