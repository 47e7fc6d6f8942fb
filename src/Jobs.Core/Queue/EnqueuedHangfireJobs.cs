using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Core.Queue;

/// <summary>
/// Hangfire jobs created already enqueued, inside the statement that stores the rows they carry: what Hangfire's
/// client does in two transactions (Hangfire.PostgreSql's <c>CreateExpiredJob</c>, then the Enqueued state with its
/// queue row and <c>NOTIFY new_job</c>), written as the same rows — a <c>hangfire.job</c> in state Enqueued and never
/// expiring, its <c>hangfire.state</c>, its <c>hangfire.jobqueue</c> row — with Hangfire's own serializers
/// (<see cref="InvocationData"/>, <see cref="SerializationHelper"/>, <see cref="EnqueuedState"/>). Hangfire 1.8's
/// client cannot do it in one (its storage feature <c>Transaction.CreateJob</c> is declared but its client does not use
/// it), and Hangfire.PostgreSql offers no transaction we could join. Nothing of Hangfire's runs on an initial Enqueued
/// state here — no filter of ours or of Hangfire's acts on it (<see cref="HangfireSetup"/>) — so nothing is skipped;
/// a scheduled job, a retry or a job with an Idempotency-Key still goes through Hangfire's client.
/// </summary>
public static class EnqueuedHangfireJobs
{
    private static readonly string Schema = Migrator.HangfireSchema;

    /// <summary>One Hangfire job to create: its serialized call, arguments, queue and Enqueued state data.</summary>
    public sealed record Row(string InvocationData, string Arguments, string Queue, string StateData);

    /// <summary>The rows Hangfire.PostgreSql would write for <paramref name="job"/> (its queue on the job, as ours always is).</summary>
    public static Row For(Job job)
    {
        var queue = job.Queue ?? throw new ArgumentException("The job has no queue.", nameof(job));
        var invocation = InvocationData.SerializeJob(job);
        return new Row(SerializationHelper.Serialize(invocation), invocation.Arguments, queue,
            SerializationHelper.Serialize(new EnqueuedState(queue).SerializeData()));
    }

    /// <summary>
    /// Common table expressions (to follow a <c>WITH</c>, then a comma) that create <paramref name="parameter"/>'s
    /// jobs: parameters <c>$parameter</c> to <c>$parameter+3</c> (see <see cref="AddParameters"/>). The statement reads
    /// their ids from <c>hangfire_new(ord, id)</c>, <c>ord</c> counting from 1 in the order given, and must select
    /// <see cref="Notify"/> once, so that workers wake when it commits. With <paramref name="onlyIf"/> (a condition on
    /// the statement's earlier expressions), none is created unless it holds.
    /// </summary>
    public static string Ctes(int parameter, string onlyIf = "true") => $"""
        hangfire_new AS MATERIALIZED (
            SELECT h.ord, nextval('{Schema}.job_id_seq') AS id, nextval('{Schema}.state_id_seq') AS state_id,
                   h.invocation, h.arguments, h.queue, h.state_data
            FROM unnest(${parameter}::text[], ${parameter + 1}::text[], ${parameter + 2}::text[], ${parameter + 3}::text[])
                WITH ORDINALITY AS h(invocation, arguments, queue, state_data, ord)
            WHERE {onlyIf}),
        hangfire_job AS (
            INSERT INTO {Schema}.job (id, stateid, statename, invocationdata, arguments, createdat)
            SELECT id, state_id, '{EnqueuedState.StateName}', invocation::jsonb, arguments::jsonb, now() FROM hangfire_new),
        hangfire_state AS (
            INSERT INTO {Schema}.state (id, jobid, name, createdat, data)
            SELECT state_id, id, '{EnqueuedState.StateName}', now(), state_data::jsonb FROM hangfire_new),
        hangfire_queue AS (
            INSERT INTO {Schema}.jobqueue (jobid, queue) SELECT id, queue FROM hangfire_new)
        """;

    /// <summary>Hangfire.PostgreSql's enqueue notification (<see cref="Channels.NewWork"/>), sent at commit.</summary>
    public const string Notify = $"pg_notify('{Channels.NewWork}', '')";

    /// <summary>The four array parameters <see cref="Ctes"/> reads, appended to <paramref name="parameters"/>.</summary>
    public static void AddParameters(NpgsqlParameterCollection parameters, IReadOnlyList<Row> jobs)
    {
        parameters.Add(new() { Value = jobs.Select(j => j.InvocationData).ToArray() });
        parameters.Add(new() { Value = jobs.Select(j => j.Arguments).ToArray() });
        parameters.Add(new() { Value = jobs.Select(j => j.Queue).ToArray() });
        parameters.Add(new() { Value = jobs.Select(j => j.StateData).ToArray() });
    }
}
