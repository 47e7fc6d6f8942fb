namespace Jobs.Core.Queue;

/// <summary>
/// The PostgreSQL notification channels the service uses, in one place. Every process listens on those it needs
/// through its one <see cref="Notifier"/>; a notification is only a wake-up (whoever is woken reads the rows), so a
/// missed one costs latency, never a job.
/// </summary>
public static class Channels
{
    /// <summary>
    /// A Hangfire job may be fetchable (no payload): sent with every enqueue (ours and Hangfire.PostgreSql's own, with
    /// EnableLongPolling), give-back and resume. Workers' <see cref="Producer"/>s listen.
    /// </summary>
    public const string NewWork = "new_job";

    /// <summary>A job finished (payload: its id). The API listens, for <c>?wait</c>, <c>?timeout</c> and callers' streams.</summary>
    public const string JobFinished = "jobs_finished";

    /// <summary>A map made progress or ended (payload: its id). The API listens, for map waits and result streams.</summary>
    public const string MapProgress = "maps_progress";
}
