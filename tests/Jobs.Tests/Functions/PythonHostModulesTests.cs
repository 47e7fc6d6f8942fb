using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Functions;

/// <summary>
/// jobs_host.py imports its parts from modules beside it (jobs_host_*.py). python3 finds them in the script's folder,
/// the first entry of sys.path — which PYTHONSAFEPATH, one of Python's own settings an operator's environment passes
/// on to python3, leaves out.
/// </summary>
public sealed class PythonHostModulesTests(SystemFixture system) : SystemTest(system)
{
    private const string Module = """
        import sys


        def path():
            return sys.path
        """;

    [Fact]
    public async Task With_PYTHONSAFEPATH_the_host_finds_its_modules_and_user_code_still_does_not_see_its_folder()
    {
        var folder = UserCode.TempFolder("jobs-safe-path-");
        try
        {
            var module = Path.Combine(folder.FullName, "safe_path_probe.py");
            await File.WriteAllTextAsync(module, Module);
            var queue = SystemFixture.PrivateQueue();
            await using var worker = Fixture.StartWorker("python-safe-path-worker", [queue], environment: new()
            {
                ["Python__Modules__0__Path"] = module,
                ["PYTHONSAFEPATH"] = "1",
                ["PYTHONDONTWRITEBYTECODE"] = "1",
            });
            await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:safe_path_probe.path")).StatusCode == HttpStatusCode.OK,
                "py:safe_path_probe.path is offered", 30);

            var job = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "py:safe_path_probe.path", queue }));
            Assert.True(job["state"]!.GetValue<string>() == "succeeded", job.Compact());
            var path = job["result"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();
            Assert.Equal(folder.FullName, path[0]); // the module's folder, as always
            // With the setting user code never saw the host's folder: the host puts it there for its own imports only.
            Assert.DoesNotContain(path, p => p.Length > 0 && File.Exists(Path.Combine(p, "jobs_host.py")));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
