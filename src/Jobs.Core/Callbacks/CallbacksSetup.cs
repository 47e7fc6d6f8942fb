using Jobs.Core.Configuration;
using Jobs.Core.Jobs;
using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core.Callbacks;

public static class CallbacksSetup
{
    /// <summary>Completion callbacks: queued when a job finishes (<see cref="ICallbackQueue"/>), sent by a Hangfire job of their own.</summary>
    public static IServiceCollection AddCallbacks(this IServiceCollection services)
    {
        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section);
        services.AddSingleton<CallbackStore>();
        services.AddSingleton<ICallbackQueue, CallbackQueue>();
        services.AddTransient<CallbackSender>();
        // Callbacks go only where Callbacks:AllowedHosts says; a redirect must not take them elsewhere.
        services.AddHttpClient(CallbackSender.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });
        return services;
    }
}
