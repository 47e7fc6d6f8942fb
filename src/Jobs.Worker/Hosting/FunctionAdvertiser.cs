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
internal sealed class FunctionAdvertiser(FunctionRegistry registry, IEnumerable<IChangingFunctions> changingFunctions, NpgsqlDataSource db, ILogger<FunctionAdvertiser> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private readonly IReadOnlyList<IChangingFunctions> changing = [.. changingFunctions];
    private readonly string _worker = $"{Environment.MachineName}:{Environment.ProcessId}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (changing.Count == 0) return; // no Python modules: nothing beyond the .NET functions every process knows
        using var timer = new PeriodicTimer(Period);
        do
        {
            // Read each time: a module reloaded after its file changed offers new or changed functions.
            var offers = registry.Local.OfType<PythonFunction>().ToList();
            string[] names = [.. offers.Select(f => f.Name)];
            string[] definitions = [.. offers.Select(f => f.Definition.ToJsonString())];
            if (names.Length == 0 && !_advertised) continue; // no modules (yet): nothing to say, nothing to withdraw
            _advertised = names.Length > 0;
            try
            {
                await using var batch = db.CreateBatch();
                var upsert = new NpgsqlBatchCommand("""
                    INSERT INTO jobs.function_offer (name, worker, definition, seen_at)
                    SELECT name, $3, definition::jsonb, now() FROM unnest($1::text[], $2::text[]) AS o(name, definition)
                    ON CONFLICT (name, worker) DO UPDATE SET definition = EXCLUDED.definition, seen_at = now()
                    """);
                upsert.Parameters.Add(new() { Value = names });
                upsert.Parameters.Add(new() { Value = definitions });
                upsert.Parameters.Add(new() { Value = _worker, NpgsqlDbType = NpgsqlDbType.Text });
                var withdraw = new NpgsqlBatchCommand("DELETE FROM jobs.function_offer WHERE worker = $1 AND name <> ALL($2::text[])");
                withdraw.Parameters.Add(new() { Value = _worker, NpgsqlDbType = NpgsqlDbType.Text });
                withdraw.Parameters.Add(new() { Value = names });
                batch.BatchCommands.Add(upsert);
                batch.BatchCommands.Add(withdraw);
                await batch.ExecuteNonQueryAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Could not advertise this worker's functions; retrying in {Period}", Period);
            }
        } while (await NextAsync(timer, stoppingToken));
    }

    /// <summary>The next period, or sooner when a module was reloaded.</summary>
    private async Task<bool> NextAsync(PeriodicTimer timer, CancellationToken ct)
    {
        // A tick still pending after a reload woke us is awaited next time: a PeriodicTimer takes one waiter at a time.
        _tick ??= timer.WaitForNextTickAsync(ct).AsTask();
        try
        {
            var first = await Task.WhenAny([_tick, .. changing.Select(c => c.Changed)]).WaitAsync(ct);
            if (first == _tick) _tick = null;
            return true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private Task<bool>? _tick;
    private bool _advertised;

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
