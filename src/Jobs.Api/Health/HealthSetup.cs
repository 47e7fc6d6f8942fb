using Jobs.Core.Database;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Jobs.Api.Health;

internal static class HealthSetup
{
    public static IServiceCollection AddJobsHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddNpgSql(sp => sp.GetRequiredService<NpgsqlDataSource>(), name: "npgsql", tags: ["ready"])
            .AddCheck<DatabaseReadyCheck>("schema", tags: ["ready"]);
        return services;
    }

    /// <summary>
    /// /health/live: the process answers. /health/ready: PostgreSQL answers (the Npgsql health check of
    /// AspNetCore.HealthChecks.NpgSql) and the schema is current (no migration pending).
    /// </summary>
    public static WebApplication MapJobsHealthChecks(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new() { Predicate = _ => false }).WithTags("Health");
        app.MapHealthChecks("/health/ready", new() { Predicate = c => c.Tags.Contains("ready") }).WithTags("Health");
        return app;
    }

    private sealed class DatabaseReadyCheck(NpgsqlDataSource dataSource) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct)
        {
            try
            {
                var pending = await Migrator.PendingScriptCountAsync(dataSource, ct);
                return pending == 0
                    ? HealthCheckResult.Healthy("PostgreSQL reachable, schema current")
                    : HealthCheckResult.Unhealthy($"{pending} migration(s) not applied: run the migrate step");
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return HealthCheckResult.Unhealthy("PostgreSQL unreachable", e);
            }
        }
    }
}
