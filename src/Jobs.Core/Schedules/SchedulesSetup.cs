using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core.Schedules;

public static class SchedulesSetup
{
    /// <summary>Recurring schedules: their store and what submits a job each time one fires.</summary>
    public static IServiceCollection AddSchedules(this IServiceCollection services)
    {
        services.AddSingleton<ScheduleStore>();
        services.AddTransient<ScheduleRunner>();
        return services;
    }
}
