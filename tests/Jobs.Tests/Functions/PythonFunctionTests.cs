using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Functions;

/// <summary>
/// The Python function provider: a worker pointed at src/python/examples/pool_examples.py offers its public
/// top-level functions as py:pool_examples.*, the API validates and accepts them while the worker lives, and
/// python3 processes run them with Pool's semantics.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class PythonFunctionTests(FaultSystemFixture system) : SystemTest(system)
{
    private static readonly string Module = UserCode.Readable(Path.Combine(ProgramPaths.RepositoryRoot, "src", "python", "examples", "pool_examples.py"));

    private ChildProcess StartPythonWorker(string name, string queue) => Fixture.StartWorker(name, [queue], environment: new()
    {
        ["Python__Modules__0__Path"] = Module,
        ["Python__Modules__0__Initializer"] = "init",
        ["Python__Modules__0__InitArgs"] = "[1]",
        ["Python__Modules__0__MaxTasksPerChild"] = "3",
    });

    /// <summary>
    /// Waits until this test's worker has advertised <paramref name="function"/> and the API knows it. (The API's
    /// 2 s cache of offers may still hold the previous test's, so the row is checked first.)
    /// </summary>
    private async Task WaitOfferedAsync(string function)
    {
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name = $1", function) > 0,
            $"a worker advertises {function}", 30);
        await Eventually.TrueAsync(async () => (await Http.GetAsync($"/functions/{function}")).StatusCode == HttpStatusCode.OK,
            $"{function} is offered", 10);
    }

    private async Task<JsonObject> RunAsync(object body) => await Http.WaitForJobAsync(await Http.SubmitOkAsync(body));

    [Fact]
    public async Task An_edited_module_is_reloaded_and_its_print_output_is_logged_with_the_job()
    {
        var module = Path.Combine(UserCode.TempFolder("jobs-reload-").FullName, "reloading.py");
        await File.WriteAllTextAsync(module, "def version():\n    print('printed by version')\n    return 'v1'\n");
        var queue = SystemFixture.PrivateQueue();
        await using var worker = Fixture.StartWorker("python-reload", [queue], environment: new()
        {
            ["Python__Modules__0__Path"] = module,
            ["Python__Imports__0"] = "os.getpid",
            ["Python__Imports__1"] = "builtins.str.upper",
            ["Logging__LogLevel__python"] = "Information", // the fixture logs warnings only; user output is information
        });
        await WaitOfferedAsync("py:reloading.version");

        var first = await RunAsync(new { function = "py:reloading.version", queue });
        Assert.Equal("v1", first["result"]!.GetValue<string>());
        // print() goes to the worker's log, with the job that printed it.
        var id = first["id"]!.GetValue<string>();
        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Any(l => l.Contains($"job {id}: printed by version", StringComparison.Ordinal))),
            $"the worker logs the job's print() with its id; it logged: {string.Join("\n", Fixture.Output.Where(l => l.Contains("printed", StringComparison.Ordinal)))}", 10);

        // Edited while the worker runs: the new function is offered and the edited one runs its new body.
        await File.WriteAllTextAsync(module, "def version():\n    return 'v2'\n\ndef added(x: int):\n    return x + 1\n");
        await WaitOfferedAsync("py:reloading.added");
        Assert.Equal("v2", (await RunAsync(new { function = "py:reloading.version", queue }))["result"]!.GetValue<string>());
        Assert.Equal(3, (await RunAsync(new { function = "py:reloading.added", args = new[] { 2 }, queue }))["result"]!.GetValue<int>());

        // A broken edit keeps the last good version serving.
        await File.WriteAllTextAsync(module, "def version(:\n");
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal("v2", (await RunAsync(new { function = "py:reloading.version", queue }))["result"]!.GetValue<string>());

        // Python:Imports: functions of importable modules, under pickle's names (os.getpid is posix.getpid).
        await WaitOfferedAsync("py:posix.getpid");
        Assert.True((await RunAsync(new { function = "py:posix.getpid", queue }))["result"]!.GetValue<int>() > 1);
        Assert.Equal("SHOUT", (await RunAsync(new { function = "py:builtins.str.upper", args = new[] { "shout" }, queue }))["result"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SubmitAsync(new { function = "py:posix.system", args = new[] { "true" }, queue })).StatusCode);
    }

    [Fact]
    public async Task A_modules_functions_run_with_pools_semantics()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = StartPythonWorker("python-worker", queue);
        await WaitOfferedAsync("py:pool_examples.square");

        // Listed with their signatures; lambdas and private functions are never offered.
        var square = await (await Http.GetAsync("/functions/py:pool_examples.square")).JsonAsync();
        Assert.Equal("x", square["parameters"]![0]!["name"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SubmitAsync(new { function = "py:pool_examples.lambda_is_not_offered", args = new[] { 1 }, queue })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.SubmitAsync(new { function = "py:pool_examples._private", args = new[] { 1 }, queue })).StatusCode);

        // Results, and Python's binding rules checked by the API before anything is stored.
        Assert.Equal(49, (await RunAsync(new { function = "py:pool_examples.square", args = new[] { 7 }, queue }))["result"]!.GetValue<double>());
        var rest = await RunAsync(new { function = "py:pool_examples.rest", args = new[] { 1, 2 }, kwargs = new { scale = 2, extra = "e" }, queue });
        Assert.Equal("""{"args":[2,4],"kwargs":{"extra":"e"}}""", rest["result"].Compact());
        var wrongType = await Http.SubmitAsync(new { function = "py:pool_examples.square", args = new[] { "seven" }, queue });
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Contains("x", (await wrongType.JsonAsync())["detail"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.SubmitAsync(new { function = "py:pool_examples.square", kwargs = new { y = 1 }, queue })).StatusCode);
        // Hints as loosely as Python runs them: an int-hinted parameter takes 2.5 and True, `str = None` takes null.
        Assert.Equal(1.25, (await RunAsync(new { function = "py:pool_examples.half", args = new object[] { 2.5 }, queue }))["result"]!.GetValue<double>());
        Assert.Equal(0.5, (await RunAsync(new { function = "py:pool_examples.half", args = new object[] { true }, queue }))["result"]!.GetValue<double>());
        Assert.Equal("NOTHING", (await RunAsync(new { function = "py:pool_examples.shout", args = new object?[] { null }, queue }))["result"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await Http.SubmitAsync(new { function = "py:pool_examples.shout", args = new[] { 7 }, queue })).StatusCode);
        // Bytes that are not UTF-8 inside an argument string: 400 naming it, as for .NET functions (was a 500).
        var notUtf8 = new ByteArrayContent([.. Encoding.UTF8.GetBytes($$"""{"function":"py:pool_examples.square","queue":"{{queue}}","args":["""), 0x22, 0xFF, 0x22, .. "]}"u8]);
        notUtf8.Headers.ContentType = new("application/json");
        var refused = await Http.PostAsync("/jobs", notUtf8);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.NotNull((await refused.JsonAsync())["errors"]?["args[0]"]);

        // A Python exception comes back with its type and full traceback; an unencodable result is MaybeEncodingError.
        var failed = await RunAsync(new { function = "py:pool_examples.fail", args = new[] { "bad input" }, queue });
        Assert.Equal("failed", failed["state"]!.GetValue<string>());
        Assert.Equal("ValueError", failed["error"]!["type"]!.GetValue<string>());
        Assert.Equal("bad input", failed["error"]!["message"]!.GetValue<string>());
        Assert.Contains("pool_examples.py", failed["error"]!["stackTrace"]!.GetValue<string>());
        var unencodable = await RunAsync(new { function = "py:pool_examples.not_json", queue });
        Assert.Equal("MaybeEncodingError", unencodable["error"]!["type"]!.GetValue<string>());
        // U+0000 in a result is stored as returned (results are json, as sent).
        Assert.Equal("a\0b", (await RunAsync(new { function = "py:pool_examples.awkward", args = new[] { "nul" }, queue }))["result"]!.GetValue<string>());
        foreach (var kind in new[] { "nan", "inf", "surrogate" })
        {
            // What JSON cannot carry ends the job failed at once, never processing or crashed.
            var awkward = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "py:pool_examples.awkward", args = new[] { kind }, queue }), 10);
            Assert.Equal("failed", awkward["state"]!.GetValue<string>());
            Assert.Equal("MaybeEncodingError", awkward["error"]!["type"]!.GetValue<string>());
        }

        // A timeout terminates the python3 process; the next call gets a fresh one.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var timedOut = await RunAsync(new { function = "py:pool_examples.sleep", args = new[] { 30 }, timeoutSeconds = 1, queue });
        Assert.Equal("Jobs.Core.Execution.JobTimeoutException", timedOut["error"]!["type"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"timed out after {clock.Elapsed}");

        // A call that kills its python3 process is re-run on fresh ones, then fails after Jobs:MaxWorkerCrashes deaths.
        var crashed = await RunAsync(new { function = "py:pool_examples.crash", queue });
        Assert.Equal("Jobs.Core.Functions.Python.PythonProcessDiedException", crashed["error"]!["type"]!.GetValue<string>());
        Assert.Contains("3 times", crashed["error"]!["message"]!.GetValue<string>());
        Assert.Equal(49, (await RunAsync(new { function = "py:pool_examples.square", args = new[] { 7 }, queue }))["result"]!.GetValue<double>());

        // User code runs in its module's folder, not in the worker's bin/.
        var cwd = await RunAsync(new { function = "py:pool_examples.cwd", queue });
        Assert.Equal(Path.GetDirectoryName(Module), cwd["result"]!.GetValue<string>());

        // maxtasksperchild = 3: a process serves three calls, then a new one takes over.
        var pids = new List<long>();
        for (var i = 0; i < 4; i++) pids.Add((await RunAsync(new { function = "py:pool_examples.pid", queue }))["result"]!.GetValue<long>());
        Assert.True(pids.Distinct().Count() >= 2, $"python3 processes should be recycled after 3 tasks: {string.Join(", ", pids)}");

        // Progress reported from Python, and maps over a Python function.
        var steps = await RunAsync(new { function = "py:pool_examples.steps", args = new[] { 4 }, queue });
        Assert.Equal(1.0, steps["progress"]!["fraction"]!.GetValue<double>());
        var map = await Http.PostAsync("/maps?wait=30", System.Net.Http.Json.JsonContent.Create(new { function = "py:pool_examples.square", items = new[] { 1, 2, 3 }, queue }));
        var id = (await map.JsonAsync())["id"]!.GetValue<Guid>();
        var results = await (await Http.GetAsync($"/maps/{id}/results?timeout=30")).JsonAsync();
        Assert.Equal("[1,4,9]", results["results"].Compact());
    }

    [Fact]
    public async Task A_killed_workers_python3_process_dies_with_it()
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = StartPythonWorker("python-worker-killed", queue);
        await using var _ = worker;
        await WaitOfferedAsync("py:pool_examples.sleep");
        await Http.SubmitOkAsync(new { function = "py:pool_examples.sleep", args = new[] { 60 }, queue });
        var python = 0;
        await Eventually.TrueAsync(() => Task.FromResult((python = ChildrenOf(worker.Id).FirstOrDefault()) != 0), "the worker runs the call in a python3 process", 30);
        await Task.Delay(500); // the call is under way in it

        worker.Kill();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.TrueAsync(() => Task.FromResult(!IsRunning(python)), $"python3 {python} exits once its worker is gone", 10);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"python3 outlived its worker by {clock.Elapsed}");
    }

    private static IEnumerable<int> ChildrenOf(int parent) =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit)).Select(int.Parse!)
            .Where(pid => Stat(pid) is { } stat && stat.Ppid == parent && stat.Command.StartsWith("python", StringComparison.Ordinal));

    /// <summary>Running, not gone and not a zombie nobody reaps.</summary>
    private static bool IsRunning(int pid) => Stat(pid) is { } stat && stat.State != 'Z';

    private static (string Command, char State, int Ppid)? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var close = text.LastIndexOf(')');
            var fields = text[(close + 2)..].Split(' ');
            return (text[(text.IndexOf('(') + 1)..close], fields[0][0], int.Parse(fields[1]));
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    [Fact]
    public async Task A_pool_program_passes_its_modules_functions_through_the_python_client()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var worker = StartPythonWorker("python-client-worker", queue);
        await WaitOfferedAsync("py:pool_examples.count_primes");
        var (exitCode, output, errors) = await Python.UnittestAsync("test_python_functions", new Dictionary<string, string>
        {
            ["JOBS_URL"] = Fixture.ApiUrl.ToString().TrimEnd('/'),
            ["JOBS_QUEUE"] = queue,
        });
        Assert.True(exitCode == 0, $"{output}\n{errors}");
        Assert.Contains("Ran 4 tests", errors);
    }

    [Fact]
    public async Task A_function_is_offered_only_while_a_live_worker_advertises_it()
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = StartPythonWorker("python-offer", queue);
        await WaitOfferedAsync("py:pool_examples.square");
        await worker.StopAsync(TimeSpan.FromSeconds(20));
        await worker.DisposeAsync();
        await Eventually.TrueAsync(async () => (await Http.SubmitAsync(new { function = "py:pool_examples.square", args = new[] { 2 }, queue })).StatusCode == HttpStatusCode.NotFound,
            "no live worker offers it: refused with 404", 10);
    }

    [Fact]
    public async Task Reading_the_offered_functions_never_holds_up_requests_while_postgresql_is_slow()
    {
        // The API learns the functions live workers offer from jobs.function_offer. That read used to run on the
        // request path, synchronously, under a lock: with the table slow (here: locked), every request needing it —
        // GET /functions, a Python function, an unknown name — waited for it, each holding a thread.
        var queue = SystemFixture.PrivateQueue();
        await using var worker = StartPythonWorker("python-offer-slow", queue);
        await WaitOfferedAsync("py:pool_examples.square");
        await using var locker = new Npgsql.NpgsqlConnection(Database.ConnectionString);
        await locker.OpenAsync();
        await using var tx = await locker.BeginTransactionAsync();
        await new Npgsql.NpgsqlCommand("LOCK TABLE jobs.function_offer IN ACCESS EXCLUSIVE MODE", locker, tx).ExecuteNonQueryAsync();
        await Task.Delay(3000); // past any cached read

        using var quick = new HttpClient { BaseAddress = Fixture.ApiUrl, Timeout = TimeSpan.FromSeconds(3) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            try
            {
                var response = i % 2 == 0
                    ? await quick.GetAsync("/functions/py:pool_examples.square")
                    : await quick.PostAsync("/jobs", System.Net.Http.Json.JsonContent.Create(new { function = "py:no_such.function" }));
                return ((int)response.StatusCode).ToString();
            }
            catch (TaskCanceledException)
            {
                return "no answer in 3 s";
            }
        }));
        await tx.RollbackAsync();

        Assert.All(answers.Where((_, i) => i % 2 == 0), a => Assert.Equal("200", a));
        Assert.All(answers.Where((_, i) => i % 2 == 1), a => Assert.Equal("404", a));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"answers took {clock.Elapsed.TotalSeconds:F1} s");
    }
}
