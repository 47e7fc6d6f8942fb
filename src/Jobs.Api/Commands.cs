using Jobs.Core.Configuration;
using Jobs.Core.Database;

namespace Jobs.Api;

/// <summary>
/// One-shot commands of the API program, for containers: <c>migrate</c> applies the schema (the compose file's
/// one-shot migrate service) and <c>healthcheck URL</c> probes <c>/health/ready</c> (the image has no curl).
/// </summary>
internal static class Commands
{
    /// <summary>Runs the command in <paramref name="args"/> and returns its exit code, or null when there is none.</summary>
    public static async Task<int?> RunAsync(string[] args)
    {
        switch (args)
        {
            case ["migrate", ..]:
                var configuration = new ConfigurationBuilder()
                    .SetBasePath(JobsConfiguration.ContentRoot)
                    .AddJsonFile("appsettings.json", optional: true)
                    .AddEnvironmentVariables()
                    .Build();
                await Migrator.MigrateAsync(configuration.GetJobsConnectionString(), Console.WriteLine);
                return 0;
            case ["healthcheck", var url]:
                using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
                {
                    try
                    {
                        using var response = await http.GetAsync(url);
                        Console.WriteLine($"{url}: {(int)response.StatusCode}");
                        return response.IsSuccessStatusCode ? 0 : 1;
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        Console.WriteLine($"{url}: {e.Message}");
                        return 1;
                    }
                }
            default:
                return null;
        }
    }
}
