using System.Diagnostics;
using System.Net;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Clients;

/// <summary>
/// Ten programs as Pool users write them (tests/python/pool_programs: the docs' examples verbatim, callbacks, starmap
/// and partial, imap over a generator, CPU-bound work, initializer, values, what cannot be pickled, close/join/terminate
/// and Ctrl+C), each run on multiprocessing.Pool and then on jobs.Pool with only its pool line changed, against the real
/// API and a real worker that loads the programs as modules; what both print is compared (run_pool_program.py).
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed partial class PoolProgramTests(FaultSystemFixture system) : SystemTest(system)
{
    private static readonly string Folder = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "pool_programs");
    private static readonly string[] Imports = ["os.getpid", "time.sleep", "builtins.sorted", "builtins.str.upper"];

    public static TheoryData<string> Programs() => [.. Directory.GetFiles(Folder, "*.py").Select(f => Path.GetFileNameWithoutExtension(f)!).Order()];

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task A_pool_program_prints_the_same_on_jobs_Pool(string program)
    {
        var queue = SystemFixture.PrivateQueue();
        // The workers load the moved program itself (it imports jobs), as they would a user's script.
        var moved = Path.Combine(UserCode.TempFolder("jobs-program-").FullName, program + ".py");
        await File.WriteAllTextAsync(moved, PoolLine().Replace(await File.ReadAllTextAsync(Path.Combine(Folder, program + ".py")), "from jobs import Pool$1"));
        var environment = new Dictionary<string, string?> { ["Python__Modules__0__Path"] = moved };
        if (program == "initializer")
        {
            // Pool(2, initializer=init, initargs=(10,), maxtasksperchild=5) moves when the workers run the module so.
            environment["Python__Modules__0__Initializer"] = "init";
            environment["Python__Modules__0__InitArgs"] = "[10]";
            environment["Python__Modules__0__MaxTasksPerChild"] = "5";
        }
        for (var i = 0; i < Imports.Length; i++) environment[$"Python__Imports__{i}"] = Imports[i];
        // Four slots, as Pool(4): the docs' example runs f(20) and os.getpid while time.sleep(10) holds one.
        await using var worker = Fixture.StartWorker("python-programs", [queue], workerCount: 4, environment: environment);
        await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:posix.getpid")).StatusCode == HttpStatusCode.OK
                                               && await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name LIKE $1", $"py:{program}.%") > 0,
            $"the worker offers {program}'s functions", 30);

        var info = new ProcessStartInfo("python3", [Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "run_pool_program.py"), program, moved])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/'), ["JOBS_QUEUE"] = queue },
        };
        using var python = Process.Start(info)!;
        var output = python.StandardOutput.ReadToEndAsync();
        var errors = python.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await python.WaitForExitAsync(timeout.Token);
        Assert.True(python.ExitCode == 0, $"{program}: the two pools printed differently\n{await output}\n{await errors}");
    }

    /// <summary>The line a Pool user changes (run_pool_program.py changes it the same way).</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^from multiprocessing import Pool\b(.*)$", System.Text.RegularExpressions.RegexOptions.Multiline)]
    private static partial System.Text.RegularExpressions.Regex PoolLine();
}
