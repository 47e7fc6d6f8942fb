using System.Reflection;

namespace Jobs.Launcher.Processes;

/// <summary>Where the API and worker programs were built, recorded in this assembly at build time.</summary>
public static class ProgramPaths
{
    public static string RepositoryRoot => Metadata("Jobs.RepositoryRoot");
    public static string LauncherAssembly => Metadata("Jobs.LauncherAssembly");
    public static string ApiAssembly => Metadata("Jobs.ApiAssembly");
    public static string WorkerAssembly => Metadata("Jobs.WorkerAssembly");

    private static string Metadata(string key) =>
        typeof(ProgramPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"Build metadata {key} is missing; rebuild Jobs.Launcher.");
}
