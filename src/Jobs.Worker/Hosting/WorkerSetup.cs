using Hangfire;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Jobs.Core.Queue;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Jobs.Worker.Hosting;

internal static class WorkerSetup
{
    /// <summary>
    /// A Hangfire server running the <see cref="Core.Queue.Executor"/> with Worker:WorkerCount parallel slots (default: one per
    /// core) on Worker:Queues. SIGTERM stops fetching and gives running jobs Worker:ShutdownTimeout to finish;
    /// jobs still running then are left to Hangfire, which hands them to another worker.
    /// </summary>
    /// <remarks>Needs <c>AddJobsCore</c> (Program.cs).</remarks>
    public static IServiceCollection AddJobsWorker(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<Producer>();

        services.AddHostedService<ClockBeforeWork>(); // before the server: no work is taken by this host's own clock
        services.AddHangfireServer((sp, server) =>
        {
            var worker = sp.GetRequiredService<IOptions<WorkerOptions>>().Value;
            server.WorkerCount = worker.EffectiveWorkerCount;
            server.Queues = worker.EffectiveQueues;
            // Hangfire signals running jobs' CancellationToken after StopTimeout (default 0.5 s) and abandons them
            // after ShutdownTimeout: running jobs get the whole Worker:ShutdownTimeout to finish.
            server.StopTimeout = worker.ShutdownTimeout;
            server.ShutdownTimeout = worker.ShutdownTimeout + TimeSpan.FromSeconds(5);
            server.ServerName = $"{Environment.MachineName}:{Environment.ProcessId}";
            // Hangfire's defaults: 5 s to notice a canceled job, 15 s to start a due delayed job or retry.
            server.CancellationCheckInterval = worker.CancellationCheckInterval;
            server.SchedulePollingInterval = worker.SchedulePollingInterval;
        });
        // Worker:* is this process's: validated here (the API binds it too, without refusing a worker's settings).
        services.AddOptions<WorkerOptions>().ValidateDataAnnotations()
            .Validate(o => o.Queues.All(QueueNames.IsValid), $"Worker:Queues: {QueueNames.Rule}.").ValidateOnStart();
        // Python functions (Python:Modules), run by python3 processes this worker manages, advertised to the API.
        services.AddValidatedOptions<PythonOptions>(PythonOptions.Section);
        services.AddSingleton<PythonFunctionProvider>();
        services.AddSingleton<IChangingFunctions>(sp => sp.GetRequiredService<PythonFunctionProvider>());
        services.AddHostedService(sp => sp.GetRequiredService<PythonFunctionProvider>()); // reloads changed modules
        services.AddHostedService<FunctionAdvertiser>();
        services.AddJobsTracing(configuration, "jobs-worker");
        var metricsOptions = configuration.Read<WorkerOptions>(WorkerOptions.Section);
        if (metricsOptions.MetricsPort > 0)
        {
            services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddJobsMeters().AddPrometheusExporter());
            services.AddHostedService<WorkerMetricsServer>(); // serves it on Worker:MetricsHost:MetricsPort
        }
        services.AddHostedService<WorkerMetricsSeries>(); // after AddOpenTelemetry: its provider listens by then
        services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = worker.Value.ShutdownTimeout + TimeSpan.FromSeconds(10));
        return services;
    }
}
