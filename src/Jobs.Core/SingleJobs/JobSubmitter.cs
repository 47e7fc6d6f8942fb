using System.Diagnostics;
using System.Threading.Channels;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Core.Idempotency;
using Jobs.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// Stores jobs (durable from then on) and hands them to Hangfire. Used by the API and by recurring schedules.
/// Once a row is committed the submission is accepted, whatever happens next: where handing it to Hangfire is a
/// step of its own (a delayed job, a retry) and fails (PostgreSQL went away in between) or the
/// process dies, the workers' rescuer dispatches the row later.
/// <para>
/// Group commit: submissions that arrive while earlier ones are being stored wait for the next round, and each
/// round stores all of them, with the Hangfire jobs that carry them (batches of up to Jobs:MaxBatchSize jobs per
/// Hangfire job, created enqueued: <see cref="Queue.EnqueuedHangfireJobs"/>), in one statement and one commit. An
/// idle service stores each job at once, alone; under load the rounds grow by themselves, and so does what one commit
/// and one Hangfire job carry. Each job stays its own row: tracked, cancellable and retried on its own.
/// </para>
/// </summary>
public sealed class JobSubmitter(JobSubmissionStore store, JobDispatcher dispatcher, JobsMetrics metrics, DatabaseClock clock, IOptions<JobsOptions> options, ILogger<JobSubmitter> logger)
    : IAsyncDisposable
{
    private const int MaxRoundSize = 1000;

    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>();
    private readonly Lock _startLock = new();
    private Task? _rounds;

    public async Task<(JobRecord Job, bool Created)> SubmitAsync(NewJob job, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        // The submitting request's trace (W3C traceparent) travels with the row, so the worker's run joins it.
        ThrowIfUnstorable(job);
        if (job.TraceParent is null && Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
            job = job with { TraceParent = current.Id };
        // An Idempotency-Key is claimed in its job's own transaction; a delayed job gets a scheduled Hangfire job.
        if (idempotency is not null || job.RunAt > clock.UtcNow || options.Value.MaxBatchSize == 1)
            return await SubmitAloneAsync(job, idempotency, ct);
        if (_rounds is null)
            lock (_startLock) _rounds ??= Task.Run(RoundLoopAsync); // one round at a time: the next gathers while this one stores
        var pending = new Pending(job);
        if (!_pending.Writer.TryWrite(pending)) throw new InvalidOperationException("The submitter is closed: the process is stopping.");
        // Not canceled with the request: once queued, the job is stored whether or not its client waits.
        return (await pending.Completion.Task, true);
    }

    /// <summary>
    /// Callers validate; this is the last guard: PostgreSQL refuses U+0000 in a text parameter at Bind, and a round
    /// of submissions that PostgreSQL refuses is stored again one by one. (With Npgsql's automatic preparation, which
    /// the API no longer uses for its own statements, that refusal also left the connection out of step: npgsql#6391.)
    /// </summary>
    private static void ThrowIfUnstorable(NewJob job)
    {
        foreach (var (name, value) in (ReadOnlySpan<(string, string?)>)[("function", job.Function), ("queue", job.Queue),
                     ("callbackUrl", job.CallbackUrl), ("scheduleName", job.ScheduleName), ("traceParent", job.TraceParent)])
            if (value is not null && value.Contains('\0', StringComparison.Ordinal))
                throw new ArgumentException($"{name} holds U+0000, which PostgreSQL cannot store.", name);
    }

    private async Task<(JobRecord Job, bool Created)> SubmitAloneAsync(NewJob job, IdempotencyClaim? idempotency, CancellationToken ct)
    {
        var (record, created) = await store.InsertAsync(job, idempotency, ct);
        if (!created) return (record, false);
        metrics.Submitted(record.Function, record.Queue);
        // A job due now was stored with its Hangfire job; a delayed one gets its scheduled Hangfire job now.
        if (record.HangfireJobId is null) await DispatchAsync([record]);
        return (record, true);
    }

    private async Task RoundLoopAsync()
    {
        var reader = _pending.Reader;
        var round = new List<Pending>();
        while (await reader.WaitToReadAsync())
        {
            while (round.Count < MaxRoundSize && reader.TryRead(out var next)) round.Add(next);
            try
            {
                await StoreRoundAsync(round);
            }
            catch (SubmissionOutcomeUnknownException e) when (e.Ids.Count == round.Count)
            {
                for (var i = 0; i < round.Count; i++)
                    round[i].Completion.TrySetException(new SubmissionOutcomeUnknownException(e.Kind, [e.Ids[i]], e.InnerException!));
            }
            catch (Exception e)
            {
                foreach (var p in round) p.Completion.TrySetException(e);
            }
            round.Clear();
        }
    }

    private async Task StoreRoundAsync(List<Pending> round)
    {
        IReadOnlyList<JobRecord> records;
        try
        {
            // Stored and dispatched in one statement: its Hangfire jobs are created enqueued with the rows.
            records = await store.InsertManyAsync([.. round.Select(p => p.Job)], options.Value.MaxBatchSize, CancellationToken.None);
        }
        catch (PostgresException e) when (round.Count > 1 && e.SqlState.StartsWith("22", StringComparison.Ordinal))
        {
            // PostgreSQL refused one request's data (say, \u0000 in a JSON string): store each alone, so only that one fails.
            foreach (var p in round)
            {
                try { p.Completion.TrySetResult((await SubmitAloneAsync(p.Job, null, CancellationToken.None)).Job); }
                catch (Exception alone) { p.Completion.TrySetException(alone); }
            }
            return;
        }
        foreach (var record in records) metrics.Submitted(record.Function, record.Queue);
        for (var i = 0; i < round.Count; i++) round[i].Completion.TrySetResult(records[i]);
    }

    /// <summary>
    /// POST /jobs/{id}/retry: a failed or canceled job runs again — the same row, so the same id and arguments, its
    /// attempts going on (its retries count from there: a job whose retries were spent gets one more run). The row is
    /// reset to what a submission stores (<see cref="JobSubmissionStore.ResetForRetryAsync"/>), then handed to a Hangfire
    /// job of its own as a submission is: not its old Hangfire job, which may carry a batch whose other rows must not
    /// run again (the dashboard's Requeue re-runs all of them). Null for an unknown job; Retried false, and the job
    /// unchanged, when it was not failed or canceled.
    /// </summary>
    public async Task<(JobRecord Job, bool Retried)?> RetryAsync(Guid id, CancellationToken ct)
    {
        var outcome = await store.ResetForRetryAsync(id, ct);
        // Stored, so accepted: a failed hand-over is the rescuer's, as for a submission.
        if (outcome is { Retried: true, Job: var job }) await DispatchAsync([job]);
        return outcome;
    }

    /// <summary>Hands stored rows to Hangfire and records which Hangfire job carries each.</summary>
    private async Task DispatchAsync(IReadOnlyList<JobRecord> records)
    {
        Guid[] ids = [.. records.Select(r => r.Id)];
        string[] owners;
        try
        {
            owners = dispatcher.DispatchBatches(records, options.Value.MaxBatchSize);
        }
        catch (Exception e)
        {
            // Stored, so accepted: answering an error now would tell the caller "not stored" of a job that will run.
            logger.LogWarning(e, "Could not hand {Count} stored jobs to Hangfire; the rescuer dispatches them after Jobs:DispatchGracePeriod", ids.Length);
            return;
        }
        try
        {
            await store.MarkDispatchedAsync(ids, owners, CancellationToken.None);
        }
        catch (Exception e)
        {
            // Stored and dispatched; at worst the rescuer dispatches them once more, and the runner's claim
            // makes that second dispatch a no-op. Not the callers' problem.
            logger.LogWarning(e, "Could not mark {Count} jobs dispatched", ids.Length);
        }
    }

    /// <summary>
    /// At the container's disposal (after the server has drained its requests): no new submissions, and the round
    /// under way finishes before the data source it writes through is disposed (it is created before this, so disposed after).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        if (_rounds is { } rounds) await rounds.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private sealed record Pending(NewJob Job)
    {
        public TaskCompletionSource<JobRecord> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
