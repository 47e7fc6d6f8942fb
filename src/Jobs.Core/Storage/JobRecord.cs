namespace Jobs.Core.Storage;

/// <summary>The job states a client sees, as stored in jobs.job.state.</summary>
public static class JobStates
{
    public const string Scheduled = "scheduled";
    public const string Enqueued = "enqueued";
    public const string Processing = "processing";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static readonly IReadOnlyList<string> All = [Scheduled, Enqueued, Processing, Succeeded, Failed, Canceled];

    public static bool IsFinished(string state) => state is Succeeded or Failed or Canceled;
}

/// <summary>One row of jobs.job. JSON columns are kept as JSON text; the API hands them on verbatim.</summary>
public sealed record JobRecord(
    Guid Id,
    string Function,
    string Args,
    string Kwargs,
    string Queue,
    string State,
    string? Result,
    string? Error,
    string? Progress,
    int Attempts,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt);

/// <summary>What the runner needs to run a claimed job.</summary>
public sealed record ClaimedJob(string Function, string Args, string Kwargs, int Attempts);

public sealed record JobFilter(string? State, string? Function, string? Queue);
