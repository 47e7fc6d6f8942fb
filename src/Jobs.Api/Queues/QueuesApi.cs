using Jobs.Api.Problems;
using Jobs.Api.Security;
using Jobs.Core.Queue;
using Npgsql;

namespace Jobs.Api.Queues;

/// <summary>A live worker process serving a queue: its name and its slots (jobs it runs at once, Worker:WorkerCount).</summary>
internal sealed record QueueWorker(string Name, int Slots, DateTime? Heartbeat);

/// <summary>
/// A queue as GET /queues shows it. <c>depth</c>: jobs and map chunks waiting to start (due, not yet running);
/// <c>oldestAgeSeconds</c>: how long the oldest of them has waited since it was due (0 when none waits);
/// <c>paused</c>/<c>pausedAt</c>: POST /queues/{name}/pause; <c>workers</c>: the live worker processes serving it and their
/// slots; <c>warning</c>: set when no live worker serves it (its jobs are accepted but wait).
/// </summary>
internal sealed record QueueView(string Name, bool Declared, long Depth, double OldestAgeSeconds, long Scheduled, long Processing,
    bool Paused, DateTime? PausedAt, IReadOnlyList<QueueWorker> Workers, int Slots, string? Warning);

/// <summary>/queues: what waits where, who serves it, and pausing a queue (workers stop taking its jobs) and resuming it.</summary>
internal static class QueuesApi
{
    public static IEndpointRouteBuilder MapQueuesApi(this IEndpointRouteBuilder app)
    {
        var queues = app.MapGroup("/queues").WithTags("Queues").RequireApiKey().WithRefusalsAsProblems();

        queues.MapGet("/", List)
            .WithName("ListQueues")
            .WithSummary("Queues: depth, oldest waiting job's age, paused, and the live workers serving each")
            .WithDescription("Every queue that is declared (\"default\" and exact names in Jobs:Queues), served by a live worker, " +
                             "paused, or holding unfinished jobs, sorted by name. depth counts jobs and map chunks waiting to start; " +
                             "oldestAgeSeconds is how long the oldest of them has waited since it was due (0 when none waits). " +
                             "workers lists the live worker processes (heartbeat within 90 s) serving the queue with their slots; " +
                             "warning is set when there is none: jobs sent there are accepted and wait.")
            .Produces<IReadOnlyList<QueueView>>()
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        queues.MapGet("/{name}", Get)
            .WithName("GetQueue")
            .WithSummary("One queue, as GET /queues shows it")
            .Produces<QueueView>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        queues.MapPost("/{name}/pause", Pause)
            .WithName("PauseQueue")
            .WithSummary("Pause a queue: workers stop taking its jobs (admin key)")
            .WithDescription("Workers take no new job or map chunk from the queue until it is resumed; those already running finish. " +
                             "Submissions to it are still accepted and wait. Pausing a paused queue changes nothing. " +
                             "Answers the queue (200). 400 for a queue the service does not know.")
            .Produces<QueueView>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        queues.MapPost("/{name}/resume", Resume)
            .WithName("ResumeQueue")
            .WithSummary("Resume a paused queue (admin key)")
            .WithDescription("Wakes the workers serving it at once: its waiting jobs start within about a second. Resuming a queue " +
                             "that is not paused changes nothing. Answers the queue (200). 400 for a queue the service does not know.")
            .Produces<QueueView>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return app;
    }

    private static async Task<IResult> List(KnownQueues known, PausedQueues paused, NpgsqlDataSource dataSource, CancellationToken ct) =>
        TypedResults.Ok(await ReadAsync(known, paused, dataSource, only: null, ct));

    private static async Task<IResult> Get(string name, KnownQueues known, PausedQueues paused, NpgsqlDataSource dataSource, CancellationToken ct)
    {
        var queue = SubmissionRules.Queue(known, name);
        return TypedResults.Ok((await ReadAsync(known, paused, dataSource, queue, ct))[0]);
    }

    private static async Task<IResult> Pause(string name, KnownQueues known, PausedQueues paused, NpgsqlDataSource dataSource, ILoggerFactory loggers, CancellationToken ct)
    {
        var queue = SubmissionRules.Queue(known, name);
        await paused.PauseAsync(queue, ct);
        loggers.CreateLogger(typeof(QueuesApi).FullName!).LogInformation("Queue {Queue} paused", queue);
        return TypedResults.Ok((await ReadAsync(known, paused, dataSource, queue, ct))[0]);
    }

    private static async Task<IResult> Resume(string name, KnownQueues known, PausedQueues paused, NpgsqlDataSource dataSource, ILoggerFactory loggers, CancellationToken ct)
    {
        var queue = SubmissionRules.Queue(known, name);
        if (await paused.ResumeAsync(queue, ct))
            loggers.CreateLogger(typeof(QueuesApi).FullName!).LogInformation("Queue {Queue} resumed", queue);
        return TypedResults.Ok((await ReadAsync(known, paused, dataSource, queue, ct))[0]);
    }

    /// <summary>The queues' views: all of them, or only <paramref name="only"/> (a known queue: then always one).</summary>
    private static async Task<List<QueueView>> ReadAsync(KnownQueues known, PausedQueues pausedQueues, NpgsqlDataSource dataSource, string? only, CancellationToken ct)
    {
        var counts = new Dictionary<string, QueueFigures>(StringComparer.Ordinal);
        await using (var cmd = QueueFigures.Command(dataSource, only))
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var (queue, figures) = QueueFigures.Read(reader);
                counts[queue] = figures;
            }
        }
        var paused = await pausedQueues.ListAsync(ct);
        IEnumerable<string> names = only is not null ? [only]
            : known.DeclaredNames().Concat(known.LiveWorkers().SelectMany(w => w.Queues)).Concat(paused.Keys).Concat(counts.Keys);
        return [.. names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(name =>
        {
            var c = counts.GetValueOrDefault(name);
            var workers = known.Serving(name).Select(w => new QueueWorker(w.Name, w.Slots, w.Heartbeat)).ToList();
            DateTime? pausedAt = paused.TryGetValue(name, out var since) ? since : null;
            return new QueueView(name, known.IsDeclared(name), c.Depth, Math.Round(c.OldestAgeSeconds, 3), c.Scheduled + c.RetryPending, c.Processing,
                pausedAt is not null, pausedAt, workers, workers.Sum(w => w.Slots), known.Unserved(name));
        })];
    }
}
