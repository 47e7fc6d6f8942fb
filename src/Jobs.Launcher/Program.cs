using Microsoft.Extensions.Configuration;
using System.Runtime.InteropServices;
using Jobs.Core.Configuration;
using Jobs.Launcher;
using Jobs.Launcher.Processes;

// One command for the whole service: a private PostgreSQL unless ConnectionStrings:Jobs is set, the migrate
// step, the API and Launcher:Workers worker processes. Ctrl+C or SIGTERM stops them all.
var configuration = new ConfigurationBuilder()
    .SetBasePath(JobsConfiguration.ContentRoot)
    .AddJsonFile("appsettings.json", optional: false)
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

try
{
    await using var service = await Service.StartAsync(configuration, stop.Token);
    await service.RunUntilStoppedAsync(stop.Token);
    return 0;
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    return 0;
}
catch (Exception e) when (e is InvalidOperationException or Microsoft.Extensions.Options.OptionsValidationException or FileNotFoundException)
{
    Console.Error.WriteLine($"jobs: {e.Message}");
    return 1;
}
