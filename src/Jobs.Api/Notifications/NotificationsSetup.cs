namespace Jobs.Api.Notifications;

internal static class NotificationsSetup
{
    /// <summary>The requests waiting for a job or map to change, woken through the process's one LISTEN; see <see cref="ChangeWaiters"/>.</summary>
    public static IServiceCollection AddChangeWaiters(this IServiceCollection services)
    {
        services.AddSingleton<ChangeWaiters>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangeWaiters>());
        return services;
    }
}
