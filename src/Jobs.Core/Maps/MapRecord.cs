namespace Jobs.Core.Maps;

/// <summary>One map as stored in jobs.map.</summary>
public sealed record MapRecord(Guid Id, string Function, string Kwargs, bool Star, string Queue, int Total, int Chunksize, int Chunks,
    string State, int Succeeded, int Failed, int Canceled, DateTime CreatedAt, DateTime? FinishedAt)
{
    public int Pending => Total - Succeeded - Failed - Canceled;
}

/// <summary>A map to store: validated by the caller.
/// <paramref name="Window"/>: most chunks handed to Hangfire and unfinished at once (<see cref="MapWindow"/>).
/// <paramref name="Retention"/>: how long a map with no items, stored finished, is kept.</summary>
public sealed record NewMap(string Function, string Kwargs, bool Star, string Queue, int Chunksize, int Window, double? TimeoutSeconds = null, TimeSpan? Retention = null);

/// <summary>
/// What a chunk's runner needs once it owns the chunk: the map's call, and the run of chunks it holds,
/// [<see cref="FirstChunk"/>, <see cref="EndChunk"/>) with items [<see cref="FirstIndex"/>, <see cref="EndIndex"/>).
/// </summary>
public sealed record ClaimedChunk(string Function, string Kwargs, int FirstIndex, int EndIndex, int Attempts, int Crashes, string Queue, double? TimeoutSeconds,
    DateTime MapCreatedAt, int FirstChunk = 0, int EndChunk = 0, int Chunksize = 1);

/// <summary>The next consecutive chunks a Hangfire job carries on with after its chunk (<see cref="MapExecutionStore.FinishRunAsync"/>).</summary>
public sealed record CarriedRun(int FirstChunk, int EndChunk, int FirstIndex, int EndIndex, int Attempts, int Crashes);

/// <summary>A chunk that has its turn and whose Hangfire job must still be created.</summary>
public sealed record UndispatchedChunk(Guid MapId, int Chunk, string Function, string Queue, int FirstIndex, int EndIndex);

/// <summary>
/// A finished item: <see cref="State"/> 1 succeeded (Result), 2 failed or 3 canceled (Error); <see cref="Xid"/>: the id of
/// the transaction that wrote it (completion order, <see cref="MapQueries.FinishedAfterAsync"/>). <see cref="LargeResult"/>:
/// its result is larger than <see cref="MapQueries.InlineResultBytes"/> and not read (Result is null); copy it with
/// <see cref="MapQueries.CopyItemResultAsync"/>.
/// </summary>
public sealed record MapItemOutcome(long Xid, int Index, short State, string? Result, string? Error, bool LargeResult = false, string? ResultTuples = null);

public static class MapItemStates
{
    public const short Succeeded = 1, Failed = 2, Canceled = 3;
}
