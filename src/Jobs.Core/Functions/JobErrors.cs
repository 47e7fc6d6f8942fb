namespace Jobs.Core.Functions;

/// <summary>
/// An error a job or map item can end with that is not the function's own: its <c>error.type</c> is
/// <see cref="Type"/>, a name clients match on. The names are those of 1.0 (when these classes lived in
/// <c>Jobs.Core.Execution</c>) and do not follow the code when it moves.
/// </summary>
public abstract class JobError(string message) : Exception(message), IErrorType
{
    public string Type => TypeName(GetType());

    string IErrorType.ErrorType => Type;

    /// <summary>The <c>error.type</c> of <paramref name="type"/>: the stable name for a <see cref="JobError"/>, else the full name.</summary>
    public static string TypeName(Type type) =>
        type.IsSubclassOf(typeof(JobError)) ? "Jobs.Core.Execution." + type.Name : type.FullName ?? type.Name;
}

public sealed class UnknownFunctionException(string name)
    : JobError($"No function named '{name}' is registered in this worker. Deploy it to every worker serving the queue.");

/// <summary>The error of a job that ran longer than its timeoutSeconds.</summary>
public sealed class JobTimeoutException(string function, TimeSpan timeout)
    : JobError($"{function} did not finish within its timeout of {timeout.TotalSeconds:0.###} s and was canceled.");

/// <summary>The error of a job whose worker process died while running it, too many times (poison-job quarantine).</summary>
public sealed class WorkerCrashedException(string function, int crashes)
    : JobError($"The worker process running {function} died while running it {crashes} times (Jobs:MaxWorkerCrashes); the job is not run again.");

/// <summary>The error of a job canceled through DELETE /jobs/{id}.</summary>
public sealed class JobCanceledException(string function)
    : JobError($"{function} was canceled by request.");
