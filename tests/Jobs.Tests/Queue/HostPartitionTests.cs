using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Queue;

/// <summary>
/// Workers and an API on hosts of their own (issue 26): network namespaces on a bridge (<see cref="TestHosts"/>), each
/// reaching PostgreSQL over its own link, partitioned by iptables inside the host — packets dropped, no reset, as between
/// machines. Each job's outcome is watched while the test runs (<see cref="OutcomeWatch"/>): it is written once, never
/// replaced; its callback arrives once.
/// </summary>
[Collection(FaultSystemCollection.Name)]
public sealed class HostPartitionTests(FaultSystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private const double Sleep = 30;

    public enum Fault
    {
        /// <summary>Every packet in and out dropped.</summary>
        Partition,
        /// <summary>What the network sends the host is dropped; what it sends arrives (its statements run, their answers are lost).</summary>
        RepliesLost,
    }

    [Theory]
    [InlineData(Fault.Partition)]
    [InlineData(Fault.RepliesLost)]
    public async Task A_worker_host_cut_off_mid_job_beyond_the_invisibility_timeout_loses_the_job_its_late_writes_are_refused_and_one_callback_is_sent(Fault fault)
    {
        var queue = SystemFixture.PrivateQueue();
        await using var hosts = TestHosts.Create(Database, "api", "cut-off", "rescuer");
        using var callbacks = new CallbackReceiver(hosts.Gateway);
        var (api, http) = await StartApiAsync(hosts);
        await using var _ = api;
        using var __ = http;
        await using var cutOff = StartWorker(hosts, "cut-off", queue, ("Logging__LogLevel__Jobs.Core.SingleJobs", "Information"));
        var id = await http.SubmitOkAsync(new { function = "time.sleep", args = new[] { Sleep }, queue, callbackUrl = callbacks.Url });
        await using var outcomes = OutcomeWatch.Start(Database, id);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT state FROM jobs.job WHERE id = $1", id) == "processing",
            "the job runs on the worker that will be cut off", 30);
        var running = Stopwatch.StartNew(); // its function ends Sleep s from about now, if nothing stops it

        if (fault == Fault.Partition) hosts["cut-off"].Cut();
        else hosts["cut-off"].DropFrom(hosts.Gateway);
        var clock = Stopwatch.StartNew();
        await using var rescuer = StartWorker(hosts, "rescuer", queue);
        // The rescuer gives the fetch back after Worker:InvisibilityTimeout (8 s) without renewals; the other worker runs it.
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT worker FROM jobs.job WHERE id = $1", id) is { } w
            && w.Contains($":{rescuer.Id}:", StringComparison.Ordinal), "the job taken over by the other worker", 40);
        output.WriteLine($"{fault}: taken over {clock.Elapsed.TotalSeconds:F1} s after the cut");
        var takenOver = await Database.ScalarAsync<DateTime>("SELECT started_at FROM jobs.job WHERE id = $1", id);

        // Healed while the other worker still runs it. The cut-off worker finds it has lost the job (Hangfire's check of
        // its Processing state) and stops its function, instead of running it to its end for nothing; what it writes
        // then is refused. "At once" is as soon as its connections carry bytes again: TCP retransmits with backoff, so a
        // link healed after a ~10-s partition takes a few seconds to be used again (5–7 s measured here).
        hosts["cut-off"].Heal();
        var healed = Stopwatch.StartNew();
        await Eventually.TrueAsync(() => Task.FromResult(Fixture.Output.Any(l => l.Contains(id.ToString(), StringComparison.Ordinal) && l.Contains("is not recorded", StringComparison.Ordinal))),
            "the cut-off worker's run stopped and was refused", 30);
        output.WriteLine($"{fault}: the cut-off worker's run stopped {healed.Elapsed.TotalSeconds:F1} s after the heal");
        Assert.True(running.Elapsed < TimeSpan.FromSeconds(Sleep - 3),
            $"the cut-off worker's run stopped {healed.Elapsed.TotalSeconds:F1} s after the heal, {running.Elapsed.TotalSeconds:F1} s into a {Sleep}-s function: it ran its function to the end");

        var job = await http.WaitForJobAsync(id, 60);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        var finished = await Database.ScalarAsync<DateTime>("SELECT finished_at FROM jobs.job WHERE id = $1", id);
        output.WriteLine($"{fault}: recorded run started {takenOver:HH:mm:ss.fff}, finished {finished:HH:mm:ss.fff}; attempts {job["attempts"]}");
        // The outcome recorded is the run that owns the row: the one that started when the job was taken over.
        Assert.True(finished - takenOver >= TimeSpan.FromSeconds(Sleep - 0.5),
            $"the outcome was written {(finished - takenOver).TotalSeconds:F1} s after the second run started: the cut-off worker's late outcome replaced the owner's");
        Assert.Equal(2, job["attempts"]!.GetValue<int>()); // two real starts, each counted once
        var delivery = await callbacks.NextAsync(TimeSpan.FromSeconds(30));
        Assert.Contains(id.ToString(), delivery.ToString(), StringComparison.Ordinal);
        // And it stays so: nothing reopens the job, runs it a third time or sends another callback.
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal(1, callbacks.Received);
        await outcomes.AssertOneOutcomeAsync();
        Assert.Equal(2, (await http.WaitForJobAsync(id))["attempts"]!.GetValue<int>());
    }

    /// <summary>
    /// The first call sleeps; every later one waits for the file <c>go</c> in <c>folder</c>: the run that takes the job
    /// over is still running when the cut-off one, its function long ended, can write again.
    /// </summary>
    private const string FirstShortThenHeld = """
        import os, time

        def first_short_then_held(folder, seconds):
            try:
                os.close(os.open(os.path.join(folder, "first"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                deadline = time.monotonic() + 120
                while not os.path.exists(os.path.join(folder, "go")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                return "later"
            time.sleep(seconds)
            return "first"
        """;

    [Theory]
    [InlineData("job")]
    [InlineData("map")]
    public async Task A_worker_host_whose_function_ends_while_it_is_cut_off_leaves_the_job_to_the_run_that_took_it_over(string kind)
    {
        var queue = SystemFixture.PrivateQueue();
        var folder = UserCode.TempFolder("jobs-late-run-").FullName;
        var module = Path.Combine(folder, "late_run.py");
        await File.WriteAllTextAsync(module, FirstShortThenHeld);
        await using var hosts = TestHosts.Create(Database, "api", "cut-off", "rescuer");
        using var callbacks = new CallbackReceiver(hosts.Gateway);
        var (api, http) = await StartApiAsync(hosts);
        await using var _ = api;
        using var __ = http;
        var python = ("Python__Modules__0__Path", module);
        await using var cutOff = StartWorker(hosts, "cut-off", queue, python, ("Logging__LogLevel__Jobs.Core", "Information"));
        const string function = "py:late_run.first_short_then_held";
        await Eventually.TrueAsync(async () => (await http.GetAsync($"/functions/{function}")).IsSuccessStatusCode, "the function is offered", 60);
        // A job, or a map of one item in one chunk: the rows its runs claim.
        var id = kind == "job"
            ? await http.SubmitOkAsync(new { function, args = new object[] { folder, 4.0 }, queue, callbackUrl = callbacks.Url })
            : (await http.SubmitMapAcceptedAsync(new { function, items = new[] { folder }, kwargs = new { seconds = 4.0 }, chunksize = 1, queue })).Map["id"]!.GetValue<Guid>();
        var rows = kind == "job" ? "jobs.job WHERE id = $1" : "jobs.map_chunk WHERE map_id = $1 AND chunk = 0";
        Task<string?> Row(string column) => Database.ScalarAsync<string>($"SELECT {column} FROM {rows}", id);
        await using var outcomes = kind == "job" ? OutcomeWatch.Start(Database, id) : null;
        await Eventually.TrueAsync(async () => await Row("state") == "processing", "it runs on the worker that will be cut off", 30);

        hosts["cut-off"].Cut();
        await using var rescuer = StartWorker(hosts, "rescuer", queue, python);
        await Eventually.TrueAsync(async () => await Row("worker") is { } w && w.Contains($":{rescuer.Id}:", StringComparison.Ordinal),
            "it is taken over by the other worker", 40);
        // The cut-off run's function ended seconds ago (4 s, the takeover took 8): its outcome waits for the link.
        var hangfireJob = (await Row("hangfire_job_id"))!;
        Task<string?> HangfireState() => Database.ScalarAsync<string>("SELECT statename FROM hangfire.job WHERE id = $1::bigint", hangfireJob);
        hosts["cut-off"].Heal();
        // Its late run ends one of three ways: refused, it leaves the Hangfire job alone (the fix); stopped by Hangfire
        // first (its check of the Processing state), the same; or it changes the Hangfire job's state, which is the
        // owner's now (the bug: Hangfire then aborts the owner's run, which hands its rows back to a Hangfire job that
        // has ended — no run until the invariant check, 30 s on). TCP's backoff decides when its connections carry bytes
        // again: seconds after the heal, some later than others.
        await Eventually.TrueAsync(async () => Fixture.Output.Any(l => l.Contains(id.ToString(), StringComparison.Ordinal)
                && (l.Contains(" is no longer run ", StringComparison.Ordinal) || l.Contains(" released in ", StringComparison.Ordinal)))
            || await HangfireState() != "Processing", "the cut-off worker's late run ended", 60);
        // Hangfire aborts a run within Worker:CancellationCheckInterval (0.5 s) of a state change: 3 s is plenty.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(("processing", "Processing"), (await Row("state"), await HangfireState()));
        Assert.Contains($":{rescuer.Id}:", await Row("worker"), StringComparison.Ordinal);

        // The owner's run ends it, with its own outcome: the late run's was refused.
        await File.WriteAllTextAsync(Path.Combine(folder, "go"), "");
        if (kind == "map")
        {
            Assert.Equal("later", (await http.GetFromJsonAsync<JsonObject>($"/maps/{id}/results?timeout=30"))!["results"]![0]!.GetValue<string>());
            Assert.Equal(2, await Database.ScalarAsync<int>("SELECT attempts FROM jobs.map_chunk WHERE map_id = $1", id));
            return;
        }
        var job = await http.WaitForJobAsync(id, 30);
        Assert.Equal(("succeeded", "later", 2), (job["state"]!.GetValue<string>(), job["result"]!.GetValue<string>(), job["attempts"]!.GetValue<int>()));
        var delivery = await callbacks.NextAsync(TimeSpan.FromSeconds(30));
        Assert.Contains(id.ToString(), delivery.ToString(), StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(1, callbacks.Received);
        await outcomes!.AssertOneOutcomeAsync();
    }

    [Fact]
    public async Task A_worker_host_cut_off_for_less_than_the_invisibility_timeout_keeps_its_job_and_runs_it_once()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var hosts = TestHosts.Create(Database, "cut-briefly", "standing-by");
        await using var cutOff = StartWorker(hosts, "cut-briefly", queue);
        var id = await Http.SubmitOkAsync(new { function = "time.sleep", args = new[] { 8.0 }, queue });
        await using var outcomes = OutcomeWatch.Start(Database, id);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT state FROM jobs.job WHERE id = $1", id) == "processing",
            "the job runs", 30);
        var runner = await Database.ScalarAsync<string>("SELECT worker FROM jobs.job WHERE id = $1", id);
        // A worker that would take the job, were it given back.
        await using var other = StartWorker(hosts, "standing-by", queue);

        // Cut for half the invisibility timeout (8 s): renewals are late, not missing for a whole timeout.
        hosts["cut-briefly"].Cut();
        await Task.Delay(TimeSpan.FromSeconds(4));
        hosts["cut-briefly"].Heal();

        var job = await Http.WaitForJobAsync(id, 60);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        Assert.Equal(runner, await Database.ScalarAsync<string>("SELECT worker FROM jobs.job WHERE id = $1", id));
        Assert.Equal(0, await Database.ScalarAsync<int>("SELECT crashes FROM jobs.job WHERE id = $1", id));
        await outcomes.AssertOneOutcomeAsync();
    }

    [Fact]
    public async Task A_worker_host_cut_off_from_the_api_host_alone_runs_its_jobs_maps_and_callbacks_as_before()
    {
        var queue = SystemFixture.PrivateQueue();
        await using var hosts = TestHosts.Create(Database, "api", "worker");
        using var callbacks = new CallbackReceiver(hosts.Gateway);
        var (api, http) = await StartApiAsync(hosts);
        await using var _ = api;
        using var __ = http;
        // Workers never call the API: everything they need is in PostgreSQL.
        hosts["worker"].CutFrom(hosts["api"].Address);
        await using var worker = StartWorker(hosts, "worker", queue);

        var ids = new List<Guid>();
        for (var i = 0; i < 10; i++)
            ids.Add(await http.SubmitOkAsync(new { function = "math.square", args = new[] { i }, queue, callbackUrl = callbacks.Url }));
        for (var i = 0; i < ids.Count; i++)
        {
            var job = await http.WaitForJobAsync(ids[i], 60);
            Assert.Equal(("succeeded", i * i), (job["state"]!.GetValue<string>(), job["result"]!.GetValue<int>()));
        }
        var (map, _) = await http.SubmitMapAcceptedAsync(new { function = "math.square", items = Enumerable.Range(0, 100), chunksize = 10, queue });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT state FROM jobs.map WHERE id = $1", map["id"]!.GetValue<Guid>()) == "succeeded",
            "the map ends", 60);
        await Eventually.TrueAsync(() => Task.FromResult(callbacks.Received == ids.Count), "every job's callback arrives", 30);
        // The cut is real: from the worker's host the API does not answer.
        Assert.False(await ReachableAsync(hosts["worker"], hosts["api"].Address, api.Url.Port));
    }

    private async Task<(ApiOnHost Api, HttpClient Http)> StartApiAsync(TestHosts hosts)
    {
        var url = new Uri($"http://{hosts["api"].Address}:{Network.FreePort()}");
        // An API reachable from other hosts requires a key (without one it listens on loopback only).
        var key = "hosts-" + Guid.NewGuid().ToString("N");
        var process = await Fixture.StartReadyApiAsync("api-host", url, new()
        {
            ["ConnectionStrings__Jobs"] = hosts.ConnectionString("api"),
            ["Callbacks__AllowedHosts__0"] = $"{hosts.Gateway}:*", // the receivers listen on the hosts' network
            ["Auth__ApiKeys__0__Name"] = "tests",
            ["Auth__ApiKeys__0__Sha256"] = SecuredApi.Sha256(key),
            ["Auth__ApiKeys__0__Role"] = "admin",
        }, hosts["api"]);
        var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return (new ApiOnHost(process, url), http);
    }

    private ChildProcess StartWorker(TestHosts hosts, string host, string queue, params (string Key, string Value)[] settings)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Jobs"] = hosts.ConnectionString(host),
            ["Callbacks__AllowedHosts__0"] = $"{hosts.Gateway}:*",
        };
        foreach (var (key, value) in settings) environment[key] = value;
        return Fixture.StartWorker(host, [queue], environment: environment, host: hosts[host]);
    }

    /// <summary>Whether a TCP connection from <paramref name="from"/> to the address and port opens within 2 s.</summary>
    private static async Task<bool> ReachableAsync(NetworkHost from, System.Net.IPAddress address, int port)
    {
        var probe = Process.Start(new ProcessStartInfo(from.Launch[0], [.. from.Launch.Skip(1), "python3", "-c",
            $"import socket; socket.create_connection(('{address}', {port}), timeout=2)"]) { RedirectStandardError = true })!;
        await probe.WaitForExitAsync();
        return probe.ExitCode == 0;
    }

    private sealed record ApiOnHost(ChildProcess Process, Uri Url) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Process.DisposeAsync();
    }
}
