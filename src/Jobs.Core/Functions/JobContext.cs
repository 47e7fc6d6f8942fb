namespace Jobs.Core.Functions;

/// <summary>
/// What a running function may know about and tell its job. Declare a parameter of this type to receive
/// it; like <see cref="CancellationToken"/>, it is injected and never part of the function's arguments.
/// </summary>
public sealed class JobContext(Guid jobId, int attempt, Func<double, string?, CancellationToken, Task> reportProgress)
{
    public Guid JobId { get; } = jobId;

    /// <summary>1 for the first run, higher when the job is run again after a crash or a retry.</summary>
    public int Attempt { get; } = attempt;

    /// <summary>Records progress (0..1 and an optional message), visible in the JobView while the job runs.</summary>
    public Task ReportProgressAsync(double fraction, string? message = null, CancellationToken ct = default)
    {
        if (double.IsNaN(fraction) || fraction < 0 || fraction > 1)
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "Progress is a fraction between 0 and 1.");
        return reportProgress(fraction, message, ct);
    }

    /// <summary>
    /// Where the call's arguments held Python tuples, as the Python client sent them: <c>{"args": [pointers], "kwargs":
    /// [pointers]}</c> (JSON Pointers to arrays that were tuples), or null. Python functions get their tuples back;
    /// .NET functions see plain arrays.
    /// </summary>
    public string? ArgumentTuples { get; set; }

    /// <summary>Set by a Python function's call: the JSON Pointers of the tuples in its result (a JSON array), or null.</summary>
    public string? ResultTuples { get; set; }

    /// <summary>A context for code run outside a job (tests, benchmarks).</summary>
    public static JobContext Detached { get; } = new(Guid.Empty, 1, (_, _, _) => Task.CompletedTask);
}
