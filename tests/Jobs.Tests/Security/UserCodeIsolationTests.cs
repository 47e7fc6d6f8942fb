using System.Net;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Security;

/// <summary>
/// One client's Python function must not hurt another's calls nor reach the service's secrets: the attacks of
/// tests/python/attacker.py, run by a real worker (one slot, so its calls share one python3 process) through the API.
/// The python3 host talks to the worker on descriptors of its own; user code's descriptors 0, 1 and 2 are /dev/null and
/// the worker's log; every process a call starts ends with it; user code runs as nobody when the worker is root.
/// </summary>
public sealed class UserCodeIsolationTests(SystemFixture system) : SystemTest(system)
{
    private static readonly string Module = UserCode.Readable(Path.Combine(ProgramPaths.RepositoryRoot, "tests", "python", "attacker.py"));

    private async Task<string> StartAttackedWorkerAsync()
    {
        var queue = SystemFixture.PrivateQueue();
        _worker = Fixture.StartWorker("python-attacked", [queue], workerCount: 1, environment: new()
        {
            ["Python__Modules__0__Path"] = Module,
            ["Logging__LogLevel__python"] = "Information", // user output is logged at Information; the fixture logs warnings
        });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name = 'py:attacker.whoami'") > 0,
            "the worker advertises py:attacker.*", 30);
        await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:attacker.whoami")).StatusCode == HttpStatusCode.OK, "py:attacker.* is offered", 10);
        return queue;
    }

    private ChildProcess? _worker;

    public override async Task DisposeAsync()
    {
        if (_worker is not null) await _worker.DisposeAsync();
        await base.DisposeAsync();
    }

    private async Task<JsonObject> RunAsync(string queue, string function, object[]? args = null, int? timeoutSeconds = null, int wait = 30) =>
        await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = $"py:attacker.{function}", args = args ?? [], queue, timeoutSeconds }), wait);

    private static JsonNode? Succeeded(JsonObject job)
    {
        Assert.True(job["state"]!.GetValue<string>() == "succeeded", job.Compact());
        return job["result"];
    }

    [Fact]
    public async Task A_line_written_to_descriptor_1_never_becomes_an_answer()
    {
        var queue = await StartAttackedWorkerAsync();

        var attack = await RunAsync(queue, "stdout_raw", ["""{"ok":true,"result":"INJECTED"}"""]);
        Assert.Equal("real", Succeeded(attack)!.GetValue<string>());
        foreach (var n in new[] { 3, 7 })
            Assert.Equal($"tenant-B-secret-{n}", Succeeded(await RunAsync(queue, "echo", [$"tenant-B-secret-{n}"]))!.GetValue<string>());
    }

    [Fact]
    public async Task A_shells_output_goes_to_the_worker_log_with_the_job()
    {
        var queue = await StartAttackedWorkerAsync();
        var marker = $"hi-{Guid.NewGuid():N}";

        var job = await RunAsync(queue, "shell", [$"echo {marker}"]);

        Assert.Equal(0, Succeeded(job)!.GetValue<int>());
        var id = job["id"]!.GetValue<string>();
        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Any(l => l.Contains($"job {id}: {marker}", StringComparison.Ordinal))),
            $"the worker logs the shell's output with the job id; it logged: {string.Join('\n', Fixture.Output.Where(l => l.Contains(marker, StringComparison.Ordinal)))}", 10);
        Assert.Equal("after", Succeeded(await RunAsync(queue, "echo", ["after"]))!.GetValue<string>());
    }

    [Fact]
    public async Task A_thread_writing_fake_answers_later_never_answers_another_call()
    {
        var queue = await StartAttackedWorkerAsync();

        Assert.Equal("started", Succeeded(await RunAsync(queue, "fake_answer_later", [0.3]))!.GetValue<string>());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; clock.Elapsed < TimeSpan.FromSeconds(1.5); i++)
            Assert.Equal($"mine-{i}", Succeeded(await RunAsync(queue, "echo", [$"mine-{i}"]))!.GetValue<string>());
    }

    /// <summary>
    /// Code a call leaves behind in its process — a timer's signal handler, a profile hook — could answer a later
    /// call with that call's own id, which it finds in the host: a process whose call left such code serves no other.
    /// </summary>
    [Theory]
    [InlineData("answer_next_call_by_timer")]
    [InlineData("answer_next_call_by_trace")]
    public async Task Code_a_call_leaves_in_its_process_never_answers_a_later_call(string attack)
    {
        var queue = await StartAttackedWorkerAsync();

        Succeeded(await RunAsync(queue, attack));
        Assert.Equal("tenant-B", Succeeded(await RunAsync(queue, "slow_echo", ["tenant-B", 1.0]))!.GetValue<string>());
    }

    [Fact]
    public async Task A_fake_answer_on_the_hosts_own_channel_ends_the_process_and_is_never_a_result()
    {
        var queue = await StartAttackedWorkerAsync();

        var attack = await RunAsync(queue, "fake_answer_now");

        // The line carries no call id: the process is broken, the call re-run on fresh ones until it gives up.
        Assert.Equal("failed", attack["state"]!.GetValue<string>());
        Assert.Equal("Jobs.Core.Functions.Python.PythonProcessDiedException", attack["error"]!["type"]!.GetValue<string>());
        Assert.Contains("another call", attack["error"]!["message"]!.GetValue<string>());
        Assert.Equal("next", Succeeded(await RunAsync(queue, "echo", ["next"]))!.GetValue<string>());
    }

    [Fact]
    public async Task Reading_stdin_finds_nothing_and_never_the_next_calls_request()
    {
        var queue = await StartAttackedWorkerAsync();
        var folder = UserCode.TempFolder("jobs-stdin-");
        try
        {
            Assert.Equal("", Succeeded(await RunAsync(queue, "read_stdin", timeoutSeconds: 10))!.GetValue<string>());

            var stolen = Path.Combine(folder.FullName, "stolen");
            Assert.Equal("started", Succeeded(await RunAsync(queue, "read_stdin_later", [stolen]))!.GetValue<string>());
            Assert.Equal("tenant-B-request", Succeeded(await RunAsync(queue, "echo", ["tenant-B-request"], timeoutSeconds: 10))!.GetValue<string>());
            if (File.Exists(stolen)) Assert.DoesNotContain("tenant-B-request", await File.ReadAllTextAsync(stolen));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_double_forked_setsid_child_ends_with_its_call_returned_canceled_or_timed_out()
    {
        var queue = await StartAttackedWorkerAsync();
        var folder = UserCode.TempFolder("jobs-orphan-");
        var pids = new List<int>();
        try
        {
            // A normal return: the orphan is gone when the answer is.
            var returned = Succeeded(await RunAsync(queue, "orphan", [Path.Combine(folder.FullName, "returned")]))!.GetValue<int>();
            pids.Add(returned);
            Assert.False(IsRunning(returned), $"the orphan {returned} outlived the call that started it");

            // Canceled while it runs.
            var pidfile = Path.Combine(folder.FullName, "canceled");
            var id = await Http.SubmitOkAsync(new { function = "py:attacker.orphan", args = new[] { pidfile, "sleep" }, queue });
            await Eventually.TrueAsync(() => Task.FromResult(File.Exists(pidfile)), "the call started its orphan", 30);
            var canceled = int.Parse(await File.ReadAllTextAsync(pidfile));
            pids.Add(canceled);
            Assert.Equal(HttpStatusCode.Accepted, (await Http.DeleteAsync($"/jobs/{id}")).StatusCode);
            Assert.Equal("canceled", (await Http.WaitForJobAsync(id, 20))["state"]!.GetValue<string>());
            await Eventually.TrueAsync(() => Task.FromResult(!IsRunning(canceled)), $"the orphan {canceled} ends with its canceled call", 5);

            // Timed out.
            pidfile = Path.Combine(folder.FullName, "timed-out");
            var timedOut = await RunAsync(queue, "orphan", [pidfile, "sleep"], timeoutSeconds: 3);
            Assert.Equal("Jobs.Core.Execution.JobTimeoutException", timedOut["error"]?["type"]?.GetValue<string>());
            var orphan = int.Parse(await File.ReadAllTextAsync(pidfile));
            pids.Add(orphan);
            await Eventually.TrueAsync(() => Task.FromResult(!IsRunning(orphan)), $"the orphan {orphan} ends with its timed-out call", 5);
        }
        finally
        {
            foreach (var pid in pids.Where(IsRunning)) KillQuietly(pid);
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task User_code_reads_no_secret_of_the_worker_the_api_or_the_database()
    {
        var queue = await StartAttackedWorkerAsync();

        var user = Succeeded(await RunAsync(queue, "whoami"))!;
        if (Posix.IsRoot) Assert.NotEqual(0, user["uid"]!.GetValue<int>()); // the worker is root: python3 is not

        var environ = Succeeded(await RunAsync(queue, "worker_environ"))!;
        Assert.Equal("PermissionError", environ["error"]?.GetValue<string>());
        Assert.Equal("{}", Succeeded(await RunAsync(queue, "secrets_in_environments")).Compact());

        // The private cluster's password file (the launcher's .data/postgres.password; here the fixture's cluster).
        var passwordFile = Database.Postgres is { } postgres ? postgres.DataDirectory.TrimEnd('/') + ".password" : null;
        if (passwordFile is not null && !OperatingSystem.IsWindows())
        {
            Assert.True(File.Exists(passwordFile), passwordFile);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
            var read = Succeeded(await RunAsync(queue, "read_file", [passwordFile]))!;
            Assert.Equal("PermissionError", read["error"]?.GetValue<string>());
        }
    }

    /// <summary>
    /// A worker started by a normal user runs python3 as that same user: its environment must still be out of reach
    /// (the worker is non-dumpable, so /proc/&lt;pid&gt;/environ belongs to root). As root, the test starts such a
    /// worker as nobody; as a normal user, the fixture's workers already are such workers.
    /// </summary>
    [Fact]
    public async Task As_a_normal_user_the_worker_keeps_its_environment_from_the_code_it_runs()
    {
        string queue;
        System.Diagnostics.Process? worker = null;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        if (Posix.IsRoot)
        {
            queue = SystemFixture.PrivateQueue();
            // The worker's build output, where nobody can read it (a clone under /root: a copy of it).
            var folder = UserCode.ReadableFolder(Path.GetDirectoryName(ProgramPaths.WorkerAssembly)!);
            var assembly = Path.Combine(folder, Path.GetFileName(ProgramPaths.WorkerAssembly));
            var apphost = Path.ChangeExtension(assembly, null);
            var info = new System.Diagnostics.ProcessStartInfo(File.Exists(apphost) ? apphost : "dotnet")
            {
                UserName = "nobody", UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
                WorkingDirectory = folder,
            };
            if (!File.Exists(apphost)) info.ArgumentList.Add(assembly);
            info.Environment["HOME"] = Path.GetTempPath();
            info.Environment["ConnectionStrings__Jobs"] = Database.ConnectionString;
            info.Environment["Callbacks__Secret"] = SystemFixture.CallbackSecret;
            info.Environment["Python__Executable"] = UserCode.Interpreter;
            info.Environment["Python__Modules__0__Path"] = Module;
            info.Environment["Worker__Queues__0"] = queue;
            info.Environment["Worker__WorkerCount"] = "1";
            worker = System.Diagnostics.Process.Start(info)!;
            worker.OutputDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
            worker.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
            worker.BeginOutputReadLine();
            worker.BeginErrorReadLine();
            await Eventually.TrueAsync(async () => worker.HasExited || await Database.ScalarAsync<long>(
                "SELECT count(*) FROM jobs.function_offer WHERE name = 'py:attacker.whoami'") > 0, "the worker advertises py:attacker.*", 60);
            Assert.False(worker.HasExited, string.Join('\n', output));
            await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:attacker.whoami")).StatusCode == HttpStatusCode.OK, "py:attacker.* is offered", 10);
        }
        else
        {
            queue = await StartAttackedWorkerAsync();
        }
        try
        {
            var user = Succeeded(await RunAsync(queue, "whoami"))!;
            if (worker is not null) Assert.Equal(65534, user["uid"]!.GetValue<int>()); // the worker's own user: nobody
            Assert.Equal("PermissionError", Succeeded(await RunAsync(queue, "worker_environ"))!["error"]?.GetValue<string>());
            Assert.Equal("{}", Succeeded(await RunAsync(queue, "secrets_in_environments")).Compact());
        }
        finally
        {
            if (worker is not null)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync();
                worker.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_worker_refuses_at_start_to_serve_what_its_python_user_cannot_read()
    {
        var folder = Directory.CreateTempSubdirectory("jobs-private-"); // 0700: only its owner enters it
        try
        {
            var module = Path.Combine(folder.FullName, "private_module.py");
            await File.WriteAllTextAsync(module, "def f():\n    return 1\n");
            // As root python3 runs as nobody, who cannot read the module; as another user, asking for nobody is refused.
            var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var env = new Dictionary<string, string?>
            {
                ["ConnectionStrings__Jobs"] = Database.ConnectionString,
                ["Python__Executable"] = UserCode.Interpreter,
                ["Python__Modules__0__Path"] = module,
                ["Worker__Queues__0"] = SystemFixture.PrivateQueue(),
            };
            if (!Posix.IsRoot) env["Python__User"] = "nobody";
            await using var worker = ChildProcess.Start("python-private", ProgramPaths.WorkerAssembly, env, output.Enqueue);

            await worker.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

            Assert.NotEqual(0, worker.ExitCode);
            var said = string.Join('\n', output);
            Assert.Contains("Python:User", said);
            Assert.Contains(Posix.IsRoot ? "'nobody'" : "only a worker started as root", said);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>Running: not gone, and not a zombie.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void KillQuietly(int pid)
    {
        try
        {
            System.Diagnostics.Process.GetProcessById(pid).Kill();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }
    }
}
