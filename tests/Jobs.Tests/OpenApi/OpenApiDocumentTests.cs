using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.OpenApi;

public sealed class OpenApiDocumentTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task OpenApi_document_describes_every_endpoint_with_examples_and_problem_responses()
    {
        var doc = JsonNode.Parse(await Http.GetStringAsync("/swagger/v1/swagger.json"))!;
        var paths = doc["paths"]!.AsObject();

        foreach (var path in new[] { "/jobs", "/jobs/{id}", "/jobs/{id}/result", "/functions", "/functions/{name}" })
            Assert.True(paths.ContainsKey(path), $"missing {path}");
        var submit = paths["/jobs"]!["post"]!;
        Assert.False(string.IsNullOrEmpty(submit["summary"]?.GetValue<string>()));
        Assert.Equal("math.square", submit["requestBody"]!["content"]!["application/json"]!["example"]!["function"]!.GetValue<string>());
        foreach (var code in new[] { "200", "202", "400", "404", "413" })
            Assert.True(submit["responses"]!.AsObject().ContainsKey(code), $"POST /jobs lacks response {code}");
        Assert.True(submit["responses"]!["400"]!["content"]!.AsObject().ContainsKey("application/problem+json"));
        Assert.True(paths["/jobs/{id}/result"]!["get"]!["responses"]!.AsObject().ContainsKey("424"));
    }
}
