using Hangfire.States;
using Hangfire.Storage;

namespace Jobs.Core.Queue;

/// <summary>
/// Hangfire expires finished jobs after 1 day; ours keep their results for the configured retention, and
/// Hangfire's copy lives as long as the row in jobs.job that it carries.
/// </summary>
public sealed class RetentionFilter(TimeSpan retention) : IApplyStateFilter
{
    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction) =>
        context.JobExpirationTimeout = context.NewState is DeletedState { Reason: StateReasons.Retired } ? TimeSpan.FromMinutes(5) : retention;

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction) { }
}
