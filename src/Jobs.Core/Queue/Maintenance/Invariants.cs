using Jobs.Core.Database;
using Jobs.Core.Maps;
using Jobs.Core.SingleJobs;
using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Queue.Maintenance;

/// <summary>
/// The contract between <c>jobs.job</c> / <c>jobs.map_chunk</c> (what clients see) and Hangfire's tables (what
/// workers run), in one place, and the checker that proves it holds.
/// <para>
/// <b>Every accepted job ends.</b> At any moment an unfinished job (row state scheduled, enqueued or processing; a
/// map chunk enqueued or processing) is in exactly one of these situations, and each has an owner that moves it on:
/// </para>
/// <list type="number">
/// <item><b>Not yet handed to Hangfire</b> (<c>hangfire_job_id</c> null): the submitter creates its Hangfire job
/// right after the insert; should the API die in between, the workers' <see cref="Rescuer"/> does it after
/// Jobs:DispatchGracePeriod. A map chunk is handed over only when it has its turn (<c>dispatched_at</c>, see
/// <c>Maps.MapWindow</c>): given by the submitter or by the end of an earlier chunk of its map, in the
/// transaction that ends it; the rest wait for theirs, which is fine while some chunk of the map has one (a map with
/// chunks waiting and none having its turn is reported as a map).</item>
/// <item><b>Waiting for its time</b>: its Hangfire job is Scheduled; Hangfire's scheduler enqueues it when due.</item>
/// <item><b>Fetchable</b>: its Hangfire job is Enqueued with a row in <c>hangfire.jobqueue</c> that no one holds
/// (<c>fetchedat</c> null); any worker serving the queue takes it (<see cref="Producer"/>).</item>
/// <item><b>Held by a live process</b>: the queue row is fetched and renewed by its process's
/// <see cref="Heartbeat"/> within Worker:InvisibilityTimeout; Hangfire's worker moves it to Processing at once
/// and runs it (<see cref="Executor"/>). A process that dies stops renewing, and any worker's <see cref="Rescuer"/>
/// gives the row back (3).</item>
/// </list>
/// <para>
/// Anything else is a violation once it lasts longer than a bound: a fetch never started (a holder that does not
/// run its job), a Hangfire job that ended or vanished while its row waits, a queue entry missing. The checker below
/// reports each with its rows, and repairs the two it can without guessing: a fetch never started is given back; a
/// Hangfire job that ended without its row's outcome (PostgreSQL was away for longer than the workers' write
/// patience, or the job was deleted in the dashboard after its worker died) is enqueued again, and its runner
/// finishes what is left (a canceled row ends canceled).
/// </para>
/// </summary>
public sealed class Invariants(NpgsqlDataSource dataSource)
{
    private static readonly string Schema = Migrator.HangfireSchema;

    private readonly Dictionary<(string Kind, string Id, string Problem), DateTime> _suspects = [];

    /// <summary>One unfinished job or chunk that is in none of the allowed situations.</summary>
    public sealed record Violation(string Kind, string Id, string State, string? HangfireJobId, string? HangfireState,
        DateTime? FetchedAt, DateTime CreatedAt, string Problem, TimeSpan For, int? FetchGeneration = null)
    {
        public override string ToString() =>
            $"{Kind} {Id}: {Problem} for {For.TotalSeconds:0} s (row state {State}, created {CreatedAt:O}, Hangfire job {HangfireJobId ?? "none"} " +
            $"in {HangfireState ?? "no state"}, queue fetch {(FetchedAt is { } f ? f.ToString("O") : "none")})";
    }

    /// <summary>
    /// Checks every unfinished job and chunk; returns those that broke the contract for longer than
    /// <paramref name="bound"/> (a situation first seen in an earlier call). Rows younger than
    /// <paramref name="dispatchGrace"/> may still be waiting for their dispatch.
    /// </summary>
    public async Task<IReadOnlyList<Violation>> CheckAsync(TimeSpan bound, TimeSpan invisibilityTimeout, TimeSpan dispatchGrace, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            WITH unfinished AS (
                ({JobQueries.UnfinishedForInvariants})
                UNION ALL
                ({MapQueries.UnfinishedChunksForInvariants})
                UNION ALL
                ({MapQueries.StalledMapsForInvariants}))
            SELECT u.kind, u.id, u.state, u.hangfire_job_id, u.created_at, hj.statename, q.fetchedat, q.fetchedat > now() - $1, u.since < now() - $2, now(), q.id IS NOT NULL, q.updatecount
            FROM unfinished u
            LEFT JOIN {Schema}.job hj ON hj.id = CASE WHEN u.hangfire_job_id ~ '^[0-9]{"{"}1,18{"}"}$' THEN u.hangfire_job_id::bigint END
            LEFT JOIN {Schema}.jobqueue q ON q.jobid = hj.id
            """);
        cmd.Parameters.Add(new() { Value = invisibilityTimeout, NpgsqlDbType = NpgsqlDbType.Interval });
        cmd.Parameters.Add(new() { Value = dispatchGrace, NpgsqlDbType = NpgsqlDbType.Interval });
        var seen = new List<(Violation Row, string Problem)>();
        DateTime now = DateTime.UtcNow;
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
            {
                now = DateTime.SpecifyKind(reader.GetDateTime(9), DateTimeKind.Utc);
                var hangfireJobId = reader.IsDBNull(3) ? null : reader.GetString(3);
                var hangfireState = reader.IsDBNull(5) ? null : reader.GetString(5);
                DateTime? fetchedAt = reader.IsDBNull(6) ? null : DateTime.SpecifyKind(reader.GetDateTime(6), DateTimeKind.Utc);
                var fresh = !reader.IsDBNull(7) && reader.GetBoolean(7);
                var pastGrace = reader.GetBoolean(8);
                if (Problem(hangfireJobId, hangfireState, reader.GetBoolean(10), fetchedAt, fresh, pastGrace) is not { } problem) continue;
                seen.Add((new Violation(reader.GetString(0), reader.GetString(1), reader.GetString(2), hangfireJobId, hangfireState, fetchedAt,
                    DateTime.SpecifyKind(reader.GetDateTime(4), DateTimeKind.Utc), problem, TimeSpan.Zero,
                    reader.IsDBNull(11) ? null : reader.GetInt32(11)), problem));
            }

        var current = new HashSet<(string, string, string)>();
        var violations = new List<Violation>();
        foreach (var (row, problem) in seen)
        {
            var key = (row.Kind, row.Id, problem);
            current.Add(key);
            if (!_suspects.TryGetValue(key, out var since)) _suspects[key] = since = now;
            if (now - since >= bound) violations.Add(row with { For = now - since });
        }
        foreach (var gone in _suspects.Keys.Where(k => !current.Contains(k)).ToList()) _suspects.Remove(gone);
        return violations;
    }

    /// <summary>Why this unfinished job is in none of the allowed situations, or null when it is in one.</summary>
    private static string? Problem(string? hangfireJobId, string? hangfireState, bool queued, DateTime? fetchedAt, bool fresh, bool pastGrace) =>
        hangfireJobId is null ? (pastGrace ? NotDispatched : null)
        : hangfireState switch
        {
            null => "its Hangfire job does not exist",
            "Scheduled" => null,
            "Enqueued" or "Processing" when !queued => $"its Hangfire job is {hangfireState} but has no queue entry",
            "Enqueued" when fetchedAt is null => null,
            "Enqueued" => NeverStarted,
            "Processing" when fetchedAt is null || fresh => null,
            "Processing" => "its Hangfire job is Processing but no live process renews it",
            _ => $"its Hangfire job is {hangfireState}",
        };

    /// <summary>A Hangfire job in a final state while its row waits: its outcome was lost; running it again is the repair.</summary>
    public static bool HasEnded(string? hangfireState) => hangfireState is "Succeeded" or "Failed" or "Deleted";

    public const string NotDispatched = "it was never handed to Hangfire";
    public const string NeverStarted = "its Hangfire job was fetched but never started";
}
