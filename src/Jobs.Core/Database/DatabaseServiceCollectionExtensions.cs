using Jobs.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Jobs.Core.Database;

public static class DatabaseServiceCollectionExtensions
{
    /// <summary>One <see cref="NpgsqlDataSource"/> per process, shared by everything that talks to PostgreSQL.</summary>
    public static IServiceCollection AddJobsDatabase(this IServiceCollection services, IConfiguration configuration)
    {
        var connectionString = configuration.GetJobsConnectionString();
        services.AddSingleton(_ => CreateDataSource(connectionString));
        return services;
    }

    public static NpgsqlDataSource CreateDataSource(string connectionString, string applicationName = "jobs")
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = applicationName;
        return new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
    }
}
