using System.Collections.Concurrent;
using System.Diagnostics;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Jobs.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// How idle worker slots wake for new jobs (issue 24): one wake-up per job, not one per idle slot, counted by
/// PostgreSQL itself (pg_stat_statements), without ever leaving a job unfetched while a slot is idle. Two
/// <see cref="Producer"/>s stand for two worker processes, their threads for Hangfire's worker slots; the poll, the
/// safety net, is set to 10 minutes so that only wake-ups fetch.
/// </summary>
[Collection(QueueCollection.Name)]
public sealed class ProducerWakeUpStoreFacts(QueueFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Queue = "wake";
    private static readonly TimeSpan NoPoll = TimeSpan.FromMinutes(10);

    public Task InitializeAsync() => fixture.ResetAsync();
    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_lone_job_costs_one_fetch_statement_per_idle_process_not_one_per_idle_slot()
    {
        await using var a = new Slots(fixture, slots: 2);
        await using var b = new Slots(fixture, slots: 2);
        await Eventually.TrueAsync(() => Task.FromResult(a.Idle == 2 && b.Idle == 2), "every slot idle");
        await fixture.ResetStatementsAsync();

        const int jobs = 20;
        for (var i = 0; i < jobs; i++)
        {
            var id = await fixture.EnqueueAsync(Queue, 1);
            await Eventually.TrueAsync(() => Task.FromResult(a.Ran.Contains(id[0]) || b.Ran.Contains(id[0])), $"lone job {i} ran", 10);
            // Every slot back to waiting, and time for a late fetch to show.
            await Eventually.TrueAsync(() => Task.FromResult(a.Idle == 2 && b.Idle == 2), "every slot idle again", 10);
            await Task.Delay(50);
        }

        var fetches = await fixture.FetchStatementsAsync();
        output.WriteLine($"{fetches} fetch statements for {jobs} lone jobs: {(double)fetches / jobs:F2} per job (2 processes × 2 idle slots)");
        // One per process: the winner's, and the other process's that finds nothing. Not one per slot, and no empty
        // fetch by the winner on its way back to waiting.
        Assert.True(fetches <= 2 * jobs, $"{fetches} fetch statements for {jobs} lone jobs; at most {2 * jobs} expected");
        Assert.Equal(jobs, a.Ran.Count + b.Ran.Count);
    }

    [Fact]
    public async Task One_notification_for_many_jobs_wakes_every_idle_slot()
    {
        // A backlog must not be served by one slot at a time: each slot that finds work wakes the next.
        await using var a = new Slots(fixture, slots: 2, hold: true);
        await using var b = new Slots(fixture, slots: 2, hold: true);
        await Eventually.TrueAsync(() => Task.FromResult(a.Idle == 2 && b.Idle == 2), "every slot idle");

        var clock = Stopwatch.StartNew();
        await fixture.EnqueueAsync(Queue, 10); // one transaction: PostgreSQL delivers one notification
        await Eventually.TrueAsync(() => Task.FromResult(a.Ran.Count + b.Ran.Count == 4), "every slot took a job", 5);
        output.WriteLine($"4 slots busy {clock.Elapsed.TotalMilliseconds:F0} ms after the enqueue");
        Assert.Equal(2, a.Ran.Count);
        Assert.Equal(2, b.Ran.Count);
    }

    [Fact]
    public async Task A_job_enqueued_while_every_slot_runs_is_fetched_when_one_is_free_again()
    {
        // Its notification finds no slot waiting; the slot that then comes back took the last job it saw before, so
        // it would go straight to waiting: the wake-up kept for it must send it to fetch.
        using var running = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        await using var a = new Slots(fixture, slots: 1, run: () => { running.Set(); release.Wait(); });
        await Eventually.TrueAsync(() => Task.FromResult(a.Idle == 1), "the slot idle");
        var first = await fixture.EnqueueAsync(Queue, 1);
        Assert.True(running.Wait(TimeSpan.FromSeconds(5)), "the first job runs");
        var second = await fixture.EnqueueAsync(Queue, 1);
        await Task.Delay(200); // its notification arrives while the slot runs the first
        release.Set();
        await Eventually.TrueAsync(() => Task.FromResult(a.Ran.Count == 2), "the second job fetched (no poll for 10 minutes)", 5);
        Assert.Equal([first[0], second[0]], a.Ran);
    }

    [Fact]
    public async Task Jobs_enqueued_while_slots_come_and_go_are_all_fetched_without_the_poll()
    {
        // Wake-ups that arrive while no slot waits (every slot running, or between a slot's empty fetch and its wait)
        // must not be lost: with the poll out of the way, a lost one leaves a job unfetched for good.
        // One slot a process: most wake-ups then find no thread waiting.
        await using var a = new Slots(fixture, slots: 1, runFor: () => TimeSpan.FromMilliseconds(Random.Shared.Next(0, 4)));
        await using var b = new Slots(fixture, slots: 1, runFor: () => TimeSpan.FromMilliseconds(Random.Shared.Next(0, 4)));
        var enqueued = new ConcurrentBag<long>();
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 60; i++)
            {
                foreach (var id in await fixture.EnqueueAsync(Queue, Random.Shared.Next(1, 3))) enqueued.Add(id);
                await Task.Delay(Random.Shared.Next(0, 6));
            }
        })));
        await Eventually.TrueAsync(() => Task.FromResult(a.Ran.Count + b.Ran.Count >= enqueued.Count), "every job fetched", 10);
        Assert.Equal(enqueued.OrderBy(x => x), a.Ran.Concat(b.Ran).OrderBy(x => x));
        Assert.Equal(0L, await fixture.ScalarAsync<long>("SELECT count(*) FROM hangfire.jobqueue"));
    }

    /// <summary>A "worker process": a Producer and <c>slots</c> threads that fetch as Hangfire's workers do.</summary>
    private sealed class Slots : IAsyncDisposable
    {
        private readonly Producer _queue;
        private readonly Notifier _notifier;
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread[] _threads;
        private readonly ConcurrentQueue<long> _ran = new();

        public Slots(QueueFixture fixture, int slots, bool hold = false, Func<TimeSpan>? runFor = null, Action? run = null)
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Jobs"] = fixture.ConnectionString }).Build();
            // Each "process" has its own notifier (one LISTEN connection), as each worker process does.
            _notifier = new Notifier(configuration, NullLogger<Notifier>.Instance);
            _queue = new Producer(new JobQueueStore(fixture.DataSource), _notifier, Options.Create(new WorkerOptions()), NullLogger<Producer>.Instance)
            {
                PollInterval = NoPoll,
            };
            _threads = [.. Enumerable.Range(0, slots).Select(_ => new Thread(() => Run(hold, runFor, run)) { IsBackground = true })];
            foreach (var thread in _threads) thread.Start();
        }

        public int Idle => _queue.IdleCount;
        public IReadOnlyCollection<long> Ran => _ran;

        private void Run(bool hold, Func<TimeSpan>? runFor, Action? run)
        {
            try
            {
                while (true)
                {
                    using var job = _queue.Dequeue([Queue], _stop.Token);
                    _ran.Enqueue(long.Parse(job.JobId, System.Globalization.CultureInfo.InvariantCulture));
                    if (hold)
                    {
                        _stop.Token.WaitHandle.WaitOne();
                        return;
                    }
                    if (runFor?.Invoke() is { } time && time > TimeSpan.Zero) Thread.Sleep(time);
                    run?.Invoke();
                    job.RemoveFromQueue();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public ValueTask DisposeAsync()
        {
            _stop.Cancel();
            foreach (var thread in _threads) thread.Join(TimeSpan.FromSeconds(10));
            _queue.Dispose();
            _notifier.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
