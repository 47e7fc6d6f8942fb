using Jobs.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Jobs.Core.Database;

public static class DatabaseServiceCollectionExtensions
{
    /// <summary>
    /// One <see cref="NpgsqlDataSource"/> per process, shared by everything that talks to PostgreSQL. With
    /// <paramref name="commits"/> = <see cref="CommitDurability.Relaxed"/> (worker processes) its commits do not wait for
    /// the WAL flush; see <see cref="CommitDurability"/>.
    /// </summary>
    public static IServiceCollection AddJobsDatabase(this IServiceCollection services, IConfiguration configuration, CommitDurability commits)
    {
        var connectionString = WithCommitDurability(configuration.GetJobsConnectionString(), commits);
        services.AddSingleton(sp => CreateDataSource(connectionString, loggers: sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()));
        return services;
    }

    /// <summary>
    /// The connection string for <paramref name="commits"/>, with automatic preparation of the statements a process
    /// runs over and over (PostgreSQL then parses and plans each once per connection), and no session reset when a
    /// connection goes back to the pool: nothing here leaves session state behind, and with prepared statements
    /// Npgsql's reset is seven statements, more than a whole job costs otherwise.
    /// </summary>
    public static string WithCommitDurability(string connectionString, CommitDurability commits)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        builder.NoResetOnClose = true;
        if (commits == CommitDurability.Relaxed && string.IsNullOrEmpty(builder.Options)) builder.Options = "-c synchronous_commit=off";
        return builder.ConnectionString;
    }

    /// <param name="connectionString">The connection string.</param>
    /// <param name="applicationName">What PostgreSQL shows for these connections (pg_stat_activity), unless the string says.</param>
    /// <param name="loggers">Npgsql's own log (category <c>Npgsql</c>: connection errors, and commands at Debug).</param>
    public static NpgsqlDataSource CreateDataSource(string connectionString, string applicationName = "jobs", Microsoft.Extensions.Logging.ILoggerFactory? loggers = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = applicationName;
        var dataSource = new NpgsqlDataSourceBuilder(builder.ConnectionString);
        if (loggers is not null) dataSource.UseLoggerFactory(loggers);
        return dataSource.Build();
    }
}

/// <summary>
/// Whether a process's commits wait for PostgreSQL to flush them to disk. The API's do (<see cref="Durable"/>): a
/// 202 means the job survives even a crash of PostgreSQL's machine. Workers' do not (<see cref="Relaxed"/>): a worker
/// only claims, finishes and hands on jobs that are already durable, and PostgreSQL writes its WAL in order, so a
/// crash of PostgreSQL's machine can at worst forget the last few hundred milliseconds of worker progress — those jobs
/// run again (at-least-once, as after a worker crash). A plain restart of PostgreSQL loses nothing either way.
/// </summary>
public enum CommitDurability
{
    Durable,
    Relaxed,
}
