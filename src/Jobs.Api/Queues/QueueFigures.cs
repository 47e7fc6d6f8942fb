using Jobs.Core.Maps;
using Jobs.Core.SingleJobs;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Api.Queues;

/// <summary>
/// What waits in a queue, read from jobs.job and jobs.map_chunk in one statement (their stores' parts of it) for GET /queues and /metrics alike:
/// <see cref="Depth"/> jobs and map chunks enqueued and not yet started (a chunk counts once it has its turn in its
/// map's window), <see cref="OldestAgeSeconds"/> how long the oldest of them has waited since it was due (0 when none
/// waits), <see cref="Processing"/> running now, <see cref="Scheduled"/> delayed and not yet due, and
/// <see cref="RetryPending"/> failed runs waiting for their retry.
/// </summary>
internal readonly record struct QueueFigures(long Depth, double OldestAgeSeconds, long Processing, long Scheduled, long RetryPending)
{
    private static readonly string Sql = $"""
        WITH w AS ({JobQueries.UnfinishedForQueueFigures} UNION ALL {MapQueries.UnfinishedChunksForQueueFigures})
        SELECT queue, count(*) FILTER (WHERE state = 'enqueued'),
               coalesce(extract(epoch FROM now() - min(since) FILTER (WHERE state = 'enqueued')), 0)::float8,
               count(*) FILTER (WHERE state = 'processing'),
               count(*) FILTER (WHERE state = 'scheduled' AND attempts = 0),
               count(*) FILTER (WHERE state = 'scheduled' AND attempts > 0)
        FROM w GROUP BY queue
        """;

    /// <summary>The statement for every queue with unfinished work, or only <paramref name="queue"/>.</summary>
    public static NpgsqlCommand Command(NpgsqlDataSource db, string? queue)
    {
        var cmd = db.CreateCommand(Sql);
        cmd.Parameters.Add(new() { Value = (object?)queue ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        return cmd;
    }

    /// <summary>The row the reader is on: its queue and figures.</summary>
    public static (string Queue, QueueFigures Figures) Read(NpgsqlDataReader reader) =>
        (reader.GetString(0), new QueueFigures(reader.GetInt64(1), Math.Max(0, reader.GetDouble(2)), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)));
}
