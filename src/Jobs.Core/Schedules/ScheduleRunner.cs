using Hangfire;
using Jobs.Core.SingleJobs;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.Schedules;

/// <summary>
/// What a schedule's Hangfire recurring job runs: submits one job with the schedule's function and arguments,
/// exactly as POST /jobs would, so it is tracked, cancellable and visible like any other.
/// </summary>
public sealed class ScheduleRunner(ScheduleStore schedules, JobSubmitter submitter, ILogger<ScheduleRunner> logger)
{
    [JobDisplayName("schedule {0}")]
    public async Task RunAsync(string name, CancellationToken ct)
    {
        var schedule = await schedules.GetAsync(name, ct);
        if (schedule is null)
        {
            logger.LogWarning("Schedule {Name} fired but no longer exists", name);
            return;
        }
        var (job, _) = await submitter.SubmitAsync(
            new NewJob(schedule.Function, schedule.Args, schedule.Kwargs, schedule.Queue, ScheduleName: schedule.Name), null, ct);
        logger.LogInformation("Schedule {Name} submitted job {JobId}", name, job.Id);
    }
}
