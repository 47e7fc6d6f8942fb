using Hangfire.States;
using Jobs.Core.Database;

namespace Jobs.Core.SingleJobs;

/// <summary>A failure that knows whether and when its Hangfire job should run again.</summary>
public interface IRetryable
{
    TimeSpan? RetryIn { get; }
}

/// <summary>
/// Turns a failed attempt that still has retries left into a scheduled re-run of the same Hangfire job (so the
/// runner's claim on the row carries over), after the backoff the runner computed. Hangfire's own
/// AutomaticRetry is off; this one follows each job's <c>retries</c>.
/// <para>
/// A Hangfire job that failed because PostgreSQL was unavailable — in Hangfire's own pipeline (its state changes and
/// reads around our runner) or after the runners' write patience — never failed its rows:
/// the runners turn every failure of a function into an outcome and never throw for its sake. Such a Hangfire job is
/// run again after <see cref="UnavailableRetryDelay"/>; marked Failed, it left its row waiting (found by the chaos
/// soak across a PostgreSQL restart).
/// </para>
/// </summary>
public sealed class RetryFilter(DatabaseClock clock) : IElectStateFilter
{
    public static readonly TimeSpan UnavailableRetryDelay = TimeSpan.FromSeconds(5);

    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is FailedState { Exception: IRetryable { RetryIn: { } delay } and Exception e })
            // Not before the backoff: Hangfire keeps schedule times in whole seconds, truncated, so ScheduledState(delay)
            // could re-run the job up to a second early (a 0.2 s backoff ran at once; CancelTimeoutRetryTests saw it).
            context.CandidateState = new ScheduledState(JobDispatcher.RetryTime(clock, delay)) { Reason = $"Retry in {delay.TotalSeconds:0.#} s after: {e.Message}" };
        // Not a final failure of a function (IRetryable, RetryIn null), whatever its exception wraps.
        else if (context.CandidateState is FailedState { Exception: { } failure and not IRetryable } && DatabaseRetry.IsUnavailable(failure))
            context.CandidateState = new ScheduledState(clock.UtcNow + UnavailableRetryDelay)
            {
                Reason = $"PostgreSQL was unavailable ({failure.GetBaseException().Message}); running again in {UnavailableRetryDelay.TotalSeconds:0} s",
            };
    }

}
