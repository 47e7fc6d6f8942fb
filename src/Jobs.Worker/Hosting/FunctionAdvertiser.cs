using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Worker.Hosting;

/// <summary>
/// Tells the API which functions this worker runs beyond the .NET ones every process knows (its Python modules):
/// upserts them in jobs.function_offer every <see cref="Period"/>, and deletes them when the worker stops. A
/// function stays submittable while any live worker offers it (<see cref="OfferedFunctions.Freshness"/>).
/// </summary>
internal sealed class FunctionAdvertiser(FunctionRegistry registry, NpgsqlDataSource db, ILogger<FunctionAdvertiser> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private readonly string _worker = $"{Environment.MachineName}:{Environment.ProcessId}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var offers = registry.Local.OfType<PythonFunction>().ToList();
        if (offers.Count == 0) return;
        string[] names = [.. offers.Select(f => f.Name)];
        string[] definitions = [.. offers.Select(f => f.Definition.ToJsonString())];
        using var timer = new PeriodicTimer(Period);
        do
        {
            try
            {
                await using var cmd = db.CreateCommand("""
                    INSERT INTO jobs.function_offer (name, worker, definition, seen_at)
                    SELECT name, $3, definition::jsonb, now() FROM unnest($1::text[], $2::text[]) AS o(name, definition)
                    ON CONFLICT (name, worker) DO UPDATE SET definition = EXCLUDED.definition, seen_at = now()
                    """);
                cmd.Parameters.Add(new() { Value = names });
                cmd.Parameters.Add(new() { Value = definitions });
                cmd.Parameters.Add(new() { Value = _worker, NpgsqlDbType = NpgsqlDbType.Text });
                await cmd.ExecuteNonQueryAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Could not advertise this worker's functions; retrying in {Period}", Period);
            }
        } while (await timer.TickAsync(stoppingToken));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await using var cmd = db.CreateCommand("DELETE FROM jobs.function_offer WHERE worker = $1");
            cmd.Parameters.Add(new() { Value = _worker });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not withdraw this worker's function offers; they lapse after {Freshness}", OfferedFunctions.Freshness);
        }
    }
}
