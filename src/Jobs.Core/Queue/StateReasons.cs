namespace Jobs.Core.Queue;

/// <summary>The reasons our own state changes of Hangfire jobs carry, so that filters can tell them from a user's.</summary>
public static class StateReasons
{
    /// <summary>
    /// On the Enqueued state of the rescuer's repair (a Hangfire job that ended without its rows' outcome runs again), so
    /// the dashboard filter does not take it for a Requeue of finished rows.
    /// </summary>
    public const string Repair = "Jobs: ran again, its outcome was lost";

    /// <summary>On the Deleted state the cleaner gives a failed Hangfire job whose row's retention is over.</summary>
    public const string Retired = "Jobs: retention period over";
}
