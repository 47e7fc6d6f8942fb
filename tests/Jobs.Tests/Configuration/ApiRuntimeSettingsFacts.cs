using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Configuration;

/// <summary>
/// The runtime settings the API process is built with (its runtimeconfig.json, as the launcher and the system tests
/// start it). Issue 24: profiled with CPU sampling under single submissions, 60–65% of the API's CPU was idle
/// thread-pool threads spinning (LowLevelLifoSemaphore.Wait → LowLevelSpinWaiter.Wait → sched_yield) among the 64
/// threads it keeps for Hangfire's synchronous calls.
/// </summary>
public sealed class ApiRuntimeSettingsFacts
{
    private static JsonNode ConfigProperties()
    {
        var path = Path.ChangeExtension(ProgramPaths.ApiAssembly, ".runtimeconfig.json");
        return JsonNode.Parse(File.ReadAllText(path))!["runtimeOptions"]!["configProperties"]!;
    }

    [Fact]
    public void Idle_pool_threads_of_the_API_sleep_instead_of_spinning()
    {
        var properties = ConfigProperties();
        Assert.Equal(0, (int?)properties["System.Threading.ThreadPool.UnfairSemaphoreSpinLimit"]);
        // The threads that spun: still kept, for Hangfire's blocking client calls.
        Assert.Equal(64, (int?)properties["System.Threading.ThreadPool.MinThreads"]);
    }
}
