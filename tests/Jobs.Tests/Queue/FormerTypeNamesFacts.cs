using Hangfire;
using Hangfire.Common;
using Hangfire.Storage;
using Jobs.Core.Queue;

namespace Jobs.Tests.Queue;

/// <summary>
/// Hangfire jobs stored before issue 25 name their entry point by its former type (each feature had its own); after
/// the upgrade they must still run, on the one executor, with the same method and arguments.
/// </summary>
public sealed class FormerTypeNamesFacts
{
    [Theory]
    [InlineData("Jobs.Core.Jobs.JobRunner, Jobs.Core", false)]
    [InlineData("Jobs.Core.Maps.MapChunkRunner, Jobs.Core", true)]
    public void A_hangfire_job_stored_under_a_former_entry_point_resolves_to_the_executor(string former, bool chunk)
    {
        var ids = new[] { Guid.NewGuid(), Guid.NewGuid() };
        var job = chunk
            ? Job.FromExpression<Executor>(e => e.RunAsync("f map", ids[0], 3, null, CancellationToken.None), "q")
            : Job.FromExpression<Executor>(e => e.RunAsync("f(1) and 1 more", ids, null, CancellationToken.None), "q");
        var current = InvocationData.SerializeJob(job);
        var stored = new InvocationData(former, current.Method, current.ParameterTypes, current.Arguments);

        // With Hangfire's own resolver the stored call no longer loads (the type is gone, or no longer has the method)...
        GlobalConfiguration.Configuration.UseDefaultTypeResolver();
        Assert.Throws<JobLoadException>(() => stored.DeserializeJob());
        // ...with ours (HangfireSetup installs it) it binds to the executor's same method, with the same arguments.
        GlobalConfiguration.Configuration.UseTypeResolver(FormerTypeNamesResolve);
        var loaded = stored.DeserializeJob();
        Assert.Equal(typeof(Executor), loaded.Type);
        Assert.Equal(job.Method, loaded.Method);
        Assert.Equal(chunk ? 3 : ids, chunk ? loaded.Args[2] : loaded.Args[1]);
    }

    private static Type FormerTypeNamesResolve(string name) => FormerTypeNames.Resolve(name);
}
