namespace Jobs.Api.Notifications;

internal static class NotificationsSetup
{
    /// <summary>The one LISTEN connection of this API process; see <see cref="ChangeListener"/>.</summary>
    public static IServiceCollection AddChangeListener(this IServiceCollection services)
    {
        services.AddSingleton<ChangeListener>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangeListener>());
        return services;
    }
}
