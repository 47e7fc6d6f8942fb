using System.Net;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Functions;

/// <summary>
/// A Python function is known to the API the moment a worker's offer is stored (jobs.function_offer), not after the
/// API's next background read: a client whose worker has just started used to get 404 "Unknown function" for up to a
/// second (seen in CI: PoolProgramTests' program submitted right after its worker's offer was stored).
/// </summary>
public sealed class OfferedFunctionTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task A_function_offered_a_moment_ago_is_accepted_at_once()
    {
        for (var round = 0; round < 3; round++)
        {
            var module = "fresh_" + Guid.NewGuid().ToString("N")[..10];
            // What a worker writes for `def square(x: int) -> int` of module <module> (FunctionAdvertiser).
            var definition = new JsonObject
            {
                ["name"] = $"py:{module}.square",
                ["module"] = module,
                ["function"] = new JsonObject
                {
                    ["name"] = "square", ["doc"] = "", ["returns"] = new JsonObject(),
                    ["parameters"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "x", ["kind"] = "POSITIONAL_OR_KEYWORD", ["schema"] = new JsonObject { ["type"] = "integer" }, ["required"] = true,
                    }),
                },
                ["pool"] = null,
            };
            await Database.ScalarAsync<object>("INSERT INTO jobs.function_offer (name, worker, definition, seen_at) VALUES ($1, 'a-worker-starting', $2::jsonb, now())",
                $"py:{module}.square", definition.ToJsonString());

            var submitted = await Http.SubmitAsync(new { function = $"py:{module}.square", args = new[] { 3 }, queue = SystemFixture.PrivateQueue() });
            Assert.True(submitted.StatusCode == HttpStatusCode.Accepted, $"round {round}: {(int)submitted.StatusCode} {await submitted.Content.ReadAsStringAsync()}");
            Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync($"/functions/py:{module}.square")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"/functions/py:{module}.cube")).StatusCode); // offered by nobody
        }
    }
}
