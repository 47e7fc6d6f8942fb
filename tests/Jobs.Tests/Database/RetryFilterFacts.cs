using Jobs.Core.Database;
using Npgsql;

namespace Jobs.Tests.Database;

/// <summary>Which Hangfire failures are PostgreSQL's absence, run again by RetryFilter instead of left Failed.</summary>
public sealed class RetryFilterFacts
{
    [Fact]
    public void A_pipeline_failure_from_a_terminated_connection_counts_as_PostgreSQL_unavailable() =>
        // The shape the chaos soak met: Hangfire's culture filter reading a job parameter while PostgreSQL restarted.
        Assert.True(DatabaseRetry.IsUnavailable(new InvalidOperationException("Could not get a value of the job parameter `CurrentUICulture`.",
            new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01"))));

    [Fact]
    public void A_refused_statement_is_not_unavailability() =>
        Assert.False(DatabaseRetry.IsUnavailable(new InvalidOperationException("x",
            new PostgresException("invalid input syntax for type json", "ERROR", "ERROR", "22P02"))));
}

public sealed class RetryFilterElectionFacts
{
    /// <summary>This host's own clock (never measured: no database here).</summary>
    private static readonly Jobs.Core.Database.DatabaseClock UnmeasuredClock = new Jobs.Core.Database.DatabaseClock(Npgsql.NpgsqlDataSource.Create("Host=127.0.0.1"), Microsoft.Extensions.Logging.Abstractions.NullLogger<Jobs.Core.Database.DatabaseClock>.Instance);

    [Fact]
    public void A_hangfire_job_failed_by_PostgreSQLs_absence_is_scheduled_again_not_failed()
    {
        var failure = new InvalidOperationException("Could not get a value of the job parameter `CurrentUICulture`.",
            new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01"));
        var context = Election(new Hangfire.States.FailedState(failure));

        new Jobs.Core.SingleJobs.RetryFilter(UnmeasuredClock).OnStateElection(context);

        var scheduled = Assert.IsType<Hangfire.States.ScheduledState>(context.CandidateState);
        Assert.Contains("PostgreSQL was unavailable", scheduled.Reason);
    }

    [Fact]
    public void Any_other_failure_stays_failed()
    {
        var context = Election(new Hangfire.States.FailedState(new InvalidOperationException("a bug")));

        new Jobs.Core.SingleJobs.RetryFilter(UnmeasuredClock).OnStateElection(context);

        Assert.IsType<Hangfire.States.FailedState>(context.CandidateState);
    }

    private static Hangfire.States.ElectStateContext Election(Hangfire.States.IState candidate)
    {
        var job = new Hangfire.BackgroundJob("1", Hangfire.Common.Job.FromExpression(() => Console.WriteLine()), DateTime.UtcNow);
        var apply = new Hangfire.States.ApplyStateContext(new NoStorage(), System.Reflection.DispatchProxy.Create<Hangfire.Storage.IStorageConnection, Unused>(),
            System.Reflection.DispatchProxy.Create<Hangfire.Storage.IWriteOnlyTransaction, Unused>(), job, candidate, "Processing");
        return new Hangfire.States.ElectStateContext(apply);
    }

    private sealed class NoStorage : Hangfire.JobStorage
    {
        public override Hangfire.Storage.IMonitoringApi GetMonitoringApi() => throw new NotSupportedException();
        public override Hangfire.Storage.IStorageConnection GetConnection() => throw new NotSupportedException();
    }

    /// <summary>Stands in for storage the election never touches.</summary>
    public class Unused : System.Reflection.DispatchProxy
    {
        protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args) => throw new NotSupportedException();
    }
}
