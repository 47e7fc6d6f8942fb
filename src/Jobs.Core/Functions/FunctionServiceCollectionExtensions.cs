using System.Reflection;
using Jobs.Core.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Functions;

public static class FunctionServiceCollectionExtensions
{
    /// <summary>
    /// The function registry over every provider. The API and the workers register the same providers, so the
    /// API refuses a name or arguments the workers could not run.
    /// </summary>
    public static IServiceCollection AddJobFunctions(this IServiceCollection services)
    {
        services.AddSingleton<IFunctionProvider>(sp => new ClrFunctionProvider(
            [typeof(FunctionRegistry).Assembly, .. Assembly.GetEntryAssembly() is { } entry ? [entry] : Array.Empty<Assembly>()],
            sp, sp.GetRequiredService<IOptions<JobsOptions>>()));
        services.AddSingleton<FunctionRegistry>();
        services.AddSingleton<FunctionInvoker>();
        return services;
    }
}
