using Jobs.Core.Configuration;
using Jobs.Core.SingleJobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Timeout;

namespace Jobs.Core.Callbacks;

public static class CallbacksSetup
{
    /// <summary>Completion callbacks: queued when a job finishes (<see cref="ICallbackQueue"/>), sent by a Hangfire job of their own.</summary>
    public static IServiceCollection AddCallbacks(this IServiceCollection services)
    {
        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section);
        services.AddSingleton<ICallbackQueue, CallbackQueue>();
        services.AddTransient<CallbackSender>();
        // Callbacks go only where Callbacks:AllowedHosts says; a redirect must not take them elsewhere.
        // No retry in the pipeline: each delivery is one attempt, counted and signed (X-Jobs-Delivery-Attempt); redeliveries are
        // Hangfire jobs scheduled by CallbackSender, which survive restarts.
        services.AddHttpClient(CallbackSender.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
            .AddResilienceHandler("callbacks", (pipeline, context) =>
            {
                var options = context.ServiceProvider.GetRequiredService<IOptionsMonitor<CallbackOptions>>();
                pipeline.AddTimeout(new TimeoutStrategyOptions { TimeoutGenerator = _ => ValueTask.FromResult(options.CurrentValue.Timeout) });
            });
        return services;
    }
}
