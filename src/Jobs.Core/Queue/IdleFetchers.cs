namespace Jobs.Core.Queue;

/// <summary>
/// The worker threads of one queue set that found nothing to fetch and wait. A wake-up goes to one of them; when none
/// waits it is kept (one, like an auto-reset event) for the next thread that goes idle, which then looks again at once
/// instead of waiting: a notification that arrives between a thread's empty fetch and its wait is never lost.
/// </summary>
internal sealed class IdleFetchers
{
    private readonly Lock _lock = new();
    // Last in, first woken: the thread that went idle last is the warmest.
    private readonly List<TaskCompletionSource> _waiting = [];
    private bool _pending;

    public int Count
    {
        get { lock (_lock) return _waiting.Count; }
    }

    /// <summary>Wakes one waiting thread, or, with none waiting, the next one that would wait.</summary>
    public void WakeOne()
    {
        TaskCompletionSource? woken = null;
        lock (_lock)
        {
            if (_waiting.Count > 0)
            {
                woken = _waiting[^1];
                _waiting.RemoveAt(_waiting.Count - 1);
            }
            else _pending = true;
        }
        // Outside the lock: the continuation (the blocked waiter's wake-up) runs inline.
        woken?.TrySetResult();
    }

    /// <summary>
    /// Waits until woken, at most <paramref name="timeout"/> (the poll). Throws only when <paramref name="ct"/> is
    /// canceled; a wake-up this thread took but will not act on is passed to another.
    /// </summary>
    public void Wait(TimeSpan timeout, CancellationToken ct)
    {
        TaskCompletionSource me;
        lock (_lock)
        {
            if (_pending)
            {
                _pending = false;
                return;
            }
            // Continuations run inline: the only one is this blocked thread's wake-up, which must not wait for a
            // thread-pool thread (a pool busy with jobs would delay every pickup by its thread injection, ~0.5–1 s).
            me = new TaskCompletionSource(TaskCreationOptions.None);
            _waiting.Add(me);
        }
        try
        {
            me.Task.Wait(timeout, ct);
        }
        catch (OperationCanceledException)
        {
        }
        bool stillWaiting;
        lock (_lock) stillWaiting = _waiting.Remove(me);
        if (ct.IsCancellationRequested)
        {
            if (!stillWaiting) WakeOne(); // woken, but this thread stops: someone else looks
            ct.ThrowIfCancellationRequested();
        }
    }
}
