namespace Jobs.Core.SingleJobs;

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

/// <summary>
/// One row of jobs.job. JSON columns are kept as JSON text; the API hands them on verbatim. <see cref="ResultNotRead"/>:
/// the row was read without its (large) result, which <see cref="JobQueries.CopyResultAsync"/> copies where it is served.
/// </summary>
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
    DateTime? FinishedAt,
    DateTime? RunAt,
    double? TimeoutSeconds,
    int MaxRetries,
    string? CallbackUrl,
    string? Callback,
    string? HangfireJobId,
    string? Tuples = null,
    bool ResultNotRead = false);

/// <summary>A job to store: validated by the caller (API or schedule), not yet durable.</summary>
public sealed record NewJob(
    string Function,
    string Args,
    string Kwargs,
    string Queue,
    DateTime? RunAt = null,
    double? TimeoutSeconds = null,
    int MaxRetries = 0,
    string? CallbackUrl = null,
    string? ScheduleName = null,
    string? TraceParent = null,
    string? Tuples = null);

/// <summary>
/// What the runner needs to run a claimed job. <paramref name="Resumed"/>: it was found 'processing', its last run's
/// worker died. <paramref name="DueAt"/>: when it could first have started (submission, or its runAt).
/// <paramref name="TraceParent"/>: the submitting request's W3C trace context, the parent of the run's span.
/// </summary>
public sealed record ClaimedJob(
    Guid Id, string Function, string Args, string Kwargs, string Queue, int Attempts, double? TimeoutSeconds, int MaxRetries,
    string? CallbackUrl, int Crashes, bool Resumed, DateTime DueAt, string? TraceParent, string? Tuples = null);

/// <summary>
/// How one run of a job ended, as <see cref="JobExecutionStore.FinishAsync"/> writes it: State is succeeded, failed or canceled
/// (finished), scheduled (a retry after <paramref name="RetryIn"/>) or enqueued (handed back unrun: the worker is
/// stopping). Json is the result (succeeded) or the error.
/// </summary>
public sealed record JobOutcome(Guid Id, string State, string? Json, TimeSpan? RetryIn = null, string? NewOwner = null, string? ResultTuples = null);

public sealed record JobFilter(string? State, string? Function, string? Queue);
