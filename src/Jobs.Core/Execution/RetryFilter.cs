using Hangfire.States;

namespace Jobs.Core.Execution;

/// <summary>A failure that knows whether and when its Hangfire job should run again.</summary>
public interface IRetryable
{
    TimeSpan? RetryIn { get; }
}

/// <summary>
/// Turns a failed attempt that still has retries left into a scheduled re-run of the same Hangfire job (so the
/// runner's claim on the row carries over), after the backoff the runner computed. Hangfire's own
/// AutomaticRetry is off; this one follows each job's <c>retries</c>.
/// </summary>
public sealed class RetryFilter : IElectStateFilter
{
    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is FailedState { Exception: IRetryable { RetryIn: { } delay } and Exception e })
            context.CandidateState = new ScheduledState(delay) { Reason = $"Retry in {delay.TotalSeconds:0.#} s after: {e.Message}" };
    }
}
