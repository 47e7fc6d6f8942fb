namespace Jobs.Client;

/// <summary>
/// A queue as GET /queues shows it: <see cref="Depth"/> jobs and map chunks waiting to start, the oldest of them waiting
/// for <see cref="OldestAgeSeconds"/>; <see cref="Paused"/> since <see cref="PausedAt"/>; the live worker processes serving
/// it (<see cref="Workers"/>, <see cref="Slots"/> in all); <see cref="Warning"/> when none does (its jobs wait).
/// </summary>
public sealed record QueueInfo(string Name, bool Declared, long Depth, double OldestAgeSeconds, long Scheduled, long Processing,
    bool Paused, DateTime? PausedAt, IReadOnlyList<QueueWorkerInfo> Workers, int Slots, string? Warning);

/// <summary>A live worker process serving a queue, and how many jobs it runs at once.</summary>
public sealed record QueueWorkerInfo(string Name, int Slots, DateTime? Heartbeat);
