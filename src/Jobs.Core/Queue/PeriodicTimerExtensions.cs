namespace Jobs.Core.Queue;

public static class PeriodicTimerExtensions
{
    /// <summary>The next tick of <paramref name="timer"/>; false once the host stops, instead of an OperationCanceledException.</summary>
    public static async Task<bool> TickAsync(this PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }
}
