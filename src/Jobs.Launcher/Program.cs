using System.Runtime.InteropServices;
using Jobs.Core.Configuration;
using Jobs.Launcher;
using Microsoft.Extensions.Configuration;

// Its environment (and its children's, which it passes on) holds the service's secrets: not for other processes of this
// user to read in /proc/<pid>/environ.
Jobs.Core.ProcessSecurity.HideFromSameUser();

// One command for the whole service: a private PostgreSQL unless ConnectionStrings:Jobs is set, the migrate
// step, the API and Launcher:Workers worker processes. Ctrl+C or SIGTERM stops them all.
using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });

try
{
    var configuration = new ConfigurationBuilder()
        .SetBasePath(JobsConfiguration.ContentRoot)
        .AddJsonFile("appsettings.json", optional: false)
        .AddEnvironmentVariables()
        .AddCommandLine(args)
        .Build();
    await using var service = await Service.StartAsync(configuration, stop.Token);
    await service.RunUntilStoppedAsync(stop.Token);
    return 0;
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    return 0;
}
catch (Exception e)
{
    // A start-up failure (a port in use, PostgreSQL that will not start, a child that exits, health that never
    // answers) is one line a user can act on, never a stack trace; the children's own output above has the details.
    Console.Error.WriteLine($"jobs: {Message(e)}");
    return 1;
}

static string Message(Exception e)
{
    var message = e is InvalidOperationException or Microsoft.Extensions.Options.OptionsValidationException or FileNotFoundException or TimeoutException
        ? e.Message
        : $"{e.GetType().Name}: {e.Message}";
    return string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
