using System.Net;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;
using Npgsql;

namespace Jobs.Tests.Functions;

/// <summary>
/// User Python code runs in python3 processes the worker starts; they must not see the worker's environment, whose
/// variables carry its secrets (the connection string with the database password, API key hashes, the callback
/// secret), only the documented minimal set and what the operator passes on purpose.
/// </summary>
public sealed class PythonEnvironmentTests(SystemFixture system) : SystemTest(system)
{
    // Module-level code runs in the describe process and in each serve process; both leave what they saw beside the module.
    private const string Probe = """
        import json, os, sys

        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"environ-{sys.argv[1]}.json"), "w") as f:
            json.dump(dict(os.environ), f)


        def environment():
            return dict(os.environ)
        """;

    /// <summary>The documented set (src/python/README.md, Python:PassEnvironment): these and Python's own PYTHON*, plus what this test passes on purpose.</summary>
    private static readonly string[] Allowed = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "JOBS_TEST_PASSED", "JOBS_TEST_SET"];

    private const string ApiKeySha256 = "6a3e7e0d1f6b1c1d5f0f4c8c2b9a7e6d5c4b3a29180706f5e4d3c2b1a0f9e8d7";

    [Fact]
    public async Task Python_code_sees_a_minimal_environment_without_the_workers_secrets()
    {
        var folder = UserCode.TempFolder("jobs-env-probe-");
        try
        {
            var module = Path.Combine(folder.FullName, "env_probe.py");
            await File.WriteAllTextAsync(module, Probe);
            var queue = SystemFixture.PrivateQueue();
            await using var worker = Fixture.StartWorker("python-env-worker", [queue], environment: new()
            {
                // The interpreter python3 names, not a pyenv shim (a bash script that adds its own PYENV_*, PWD and SHLVL).
                ["Python__Executable"] = UserCode.Interpreter,
                ["Python__Modules__0__Path"] = module,
                // Secrets of the other processes, as a deployment that shares one environment file would have them.
                ["Auth__ApiKeys__0__Name"] = "admin",
                ["Auth__ApiKeys__0__Sha256"] = ApiKeySha256,
                ["Auth__ApiKeys__0__Role"] = "admin",
                ["LANG"] = "C.UTF-8",
                ["TZ"] = "UTC",
                ["TMPDIR"] = folder.FullName,
                ["JOBS_TEST_UNLISTED"] = "must not pass",
                ["PYTHONDONTWRITEBYTECODE"] = "1",
                ["JOBS_TEST_PASSED"] = "passed",
                ["Python__PassEnvironment__0"] = "JOBS_TEST_PASSED",
                ["Python__Environment__JOBS_TEST_SET"] = "set",
            });
            await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.function_offer WHERE name = 'py:env_probe.environment'") > 0,
                "the worker advertises py:env_probe.environment", 30);
            await Eventually.TrueAsync(async () => (await Http.GetAsync("/functions/py:env_probe.environment")).StatusCode == HttpStatusCode.OK,
                "py:env_probe.environment is offered", 10);

            var job = await Http.WaitForJobAsync(await Http.SubmitOkAsync(new { function = "py:env_probe.environment", queue }));
            Assert.True(job["state"]!.GetValue<string>() == "succeeded", job.Compact());

            var seen = new Dictionary<string, JsonObject>
            {
                ["a call"] = job["result"]!.AsObject(),
                ["the describe process"] = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(folder.FullName, "environ-describe.json")))!.AsObject(),
                ["the serve process"] = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(folder.FullName, "environ-serve.json")))!.AsObject(),
            };
            var password = new NpgsqlConnectionStringBuilder(Database.ConnectionString).Password;
            foreach (var (where, environment) in seen)
            {
                var names = environment.Select(p => p.Key).ToList();
                var values = string.Join('\n', environment.Select(p => p.Value!.GetValue<string>()));
                var all = $"{where} saw: {string.Join(", ", names.Order())}";
                foreach (var secret in (string[])["ConnectionStrings", "Auth", "Secret"])
                    Assert.DoesNotContain(names, n => n.Contains(secret, StringComparison.OrdinalIgnoreCase));
                if (!string.IsNullOrEmpty(password)) Assert.False(values.Contains(password, StringComparison.Ordinal), $"{where} saw the database password");
                Assert.DoesNotContain(SystemFixture.CallbackSecret, values);
                Assert.DoesNotContain(ApiKeySha256, values);
                Assert.DoesNotContain("JOBS_TEST_UNLISTED", names);
                Assert.True(names.All(n => Allowed.Contains(n) || n.StartsWith("PYTHON", StringComparison.Ordinal)), $"only the documented minimal set may reach Python code; {all}");

                Assert.Equal(Environment.GetEnvironmentVariable("PATH"), environment["PATH"]?.GetValue<string>());
                Assert.Equal(Environment.GetEnvironmentVariable("HOME"), environment["HOME"]?.GetValue<string>());
                Assert.Equal("C.UTF-8", environment["LANG"]?.GetValue<string>());
                Assert.Equal("UTC", environment["TZ"]?.GetValue<string>());
                Assert.Equal(folder.FullName, environment["TMPDIR"]?.GetValue<string>());
                Assert.Equal("passed", environment["JOBS_TEST_PASSED"]?.GetValue<string>());
                Assert.Equal("set", environment["JOBS_TEST_SET"]?.GetValue<string>());
                Assert.Equal("1", environment["PYTHONDONTWRITEBYTECODE"]?.GetValue<string>());
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
