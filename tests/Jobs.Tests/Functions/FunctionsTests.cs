using System.Net;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Functions;

public sealed class FunctionsTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task Functions_are_listed_with_their_parameters_as_json_schema()
    {
        var functions = JsonNode.Parse(await Http.GetStringAsync("/functions"))!.AsArray();
        var names = functions.Select(f => f!["name"]!.GetValue<string>()).ToList();

        Assert.Superset(new HashSet<string> { "math.square", "math.pow", "primes.count", "cpu.spin", "time.sleep",
            "text.sha256", "noop", "progress.demo", "debug.fail", "debug.crash" }, names.ToHashSet());

        var sha = functions.Single(f => f!["name"]!.GetValue<string>() == "text.sha256")!;
        var parameters = sha["parameters"]!.AsArray();
        Assert.Equal("text", parameters[0]!["name"]!.GetValue<string>());
        Assert.Equal("string", parameters[0]!["schema"]!["type"]!.GetValue<string>());
        Assert.True(parameters[0]!["required"]!.GetValue<bool>());
        Assert.Equal("integer", parameters[1]!["schema"]!["type"]!.GetValue<string>());
        Assert.False(parameters[1]!["required"]!.GetValue<bool>());
        Assert.Equal(1, parameters[1]!["default"]!.GetValue<int>());
        Assert.Equal("string", sha["returns"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task One_function_by_name_and_404_problem_for_an_unknown_one()
    {
        var square = await (await Http.GetAsync("/functions/math.square")).JsonAsync();
        Assert.Equal("number", square["parameters"]![0]!["schema"]!["type"]!.GetValue<string>());

        var missing = await Http.GetAsync("/functions/math.cube");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Contains("math.cube", (await missing.JsonAsync())["detail"]!.GetValue<string>());
    }
}
