using Jobs.Core.Queue;
using Microsoft.Extensions.DependencyInjection;

namespace Jobs.Core.Maps;

public static class MapsSetup
{
    /// <summary>Maps (Pool.map/imap): their stores and the runner of one chunk.</summary>
    public static IServiceCollection AddMaps(this IServiceCollection services)
    {
        services.AddSingleton<MapQueries>();
        services.AddSingleton<MapSubmissionStore>();
        services.AddSingleton<MapExecutionStore>();
        services.AddSingleton<MapDispatcher>();
        services.AddSingleton<MapWindow>();
        services.AddSingleton<MapSubmitter>();
        services.AddTransient<IRunsMapChunks, MapChunkRunner>();
        return services;
    }
}
