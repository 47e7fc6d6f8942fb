namespace Jobs.Core.Maps;

/// <summary>One map as stored in jobs.map.</summary>
public sealed record MapRecord(Guid Id, string Function, string Kwargs, bool Star, string Queue, int Total, int Chunksize, int Chunks,
    string State, int Succeeded, int Failed, int Canceled, DateTime CreatedAt, DateTime? FinishedAt)
{
    public int Pending => Total - Succeeded - Failed - Canceled;
}

/// <summary>A map to store: validated by the caller.
/// <paramref name="Window"/>: most chunks handed to Hangfire and unfinished at once (<see cref="MapWindow"/>).</summary>
public sealed record NewMap(string Function, string Kwargs, bool Star, string Queue, int Chunksize, int Window, double? TimeoutSeconds = null);

/// <summary>What a chunk's runner needs once it owns the chunk.</summary>
public sealed record ClaimedChunk(string Function, string Kwargs, int FirstIndex, int EndIndex, int Attempts, int Crashes, string Queue, double? TimeoutSeconds,
    DateTime MapCreatedAt);

/// <summary>A chunk that has its turn and whose Hangfire job must still be created.</summary>
public sealed record UndispatchedChunk(Guid MapId, int Chunk, string Function, string Queue, int FirstIndex, int EndIndex);

/// <summary>
/// A finished item: <see cref="State"/> 1 succeeded (Result), 2 failed or 3 canceled (Error). <see cref="LargeResult"/>:
/// its result is larger than <see cref="MapQueries.InlineResultBytes"/> and not read (Result is null); copy it with
/// <see cref="MapQueries.CopyItemResultAsync"/>.
/// </summary>
public sealed record MapItemOutcome(long Seq, int Index, short State, string? Result, string? Error, bool LargeResult = false, string? ResultTuples = null);

public static class MapItemStates
{
    public const short Pending = 0, Succeeded = 1, Failed = 2, Canceled = 3;
}
