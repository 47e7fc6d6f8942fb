using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.OpenApi;

/// <summary>
/// The OpenAPI document as client generators read it (issue 22): linted by Redocly CLI (pinned in tests/openapi) with
/// its recommended rules, and the promises generated clients rely on checked one by one.
/// </summary>
public sealed class OpenApiContractTests(SystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private async Task<JsonNode> DocumentAsync() => JsonNode.Parse(await Http.GetStringAsync("/swagger/v1/swagger.json"))!;

    [Fact]
    public async Task Redocly_recommended_rules_find_no_error_in_the_live_document()
    {
        var file = Path.Combine(Path.GetTempPath(), $"jobs-openapi-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, await Http.GetStringAsync("/swagger/v1/swagger.json"));
        try
        {
            var cli = Path.Combine(await OpenApiTools.NodeModulesAsync(), "@redocly", "cli", "bin", "cli.js");
            var lint = await OpenApiTools.RunAsync("node", [cli, "lint", "--config", Path.Combine(OpenApiTools.Folder, "redocly.yaml"),
                "--format", "stylish", file], OpenApiTools.Folder);
            output.WriteLine(lint.Output + lint.Errors); // the warnings, and the summary line
            Assert.True(lint.ExitCode == 0, $"redocly lint found errors:\n{lint.Output}\n{lint.Errors}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task No_framework_type_leaks_into_the_schemas()
    {
        var schemas = (await DocumentAsync())["components"]!["schemas"]!.AsObject();
        foreach (var (name, schema) in schemas)
        {
            Assert.DoesNotContain("JsonNode", name);
            Assert.DoesNotContain("JsonElement", name);
            Assert.DoesNotContain("RawJson", name);
            var properties = schema!["properties"]?.AsObject().Select(p => p.Key).ToList() ?? [];
            Assert.False(properties.Contains("parent") && properties.Contains("root"), $"{name} looks like .NET's JsonNode: {string.Join(", ", properties)}");
            Assert.False(properties.Contains("options") && properties.Contains("parent"), $"{name} looks like .NET's JsonNode: {string.Join(", ", properties)}");
        }
    }

    [Fact]
    public async Task JobView_lists_required_properties_and_a_nullable_any_value_result()
    {
        var doc = await DocumentAsync();
        var job = doc["components"]!["schemas"]!["JobView"]!;
        var required = job["required"]!.AsArray().Select(r => r!.GetValue<string>()).ToHashSet();
        foreach (var name in new[] { "id", "function", "args", "kwargs", "queue", "state", "ready", "successful", "result", "error", "attempts", "createdAt" })
            Assert.Contains(name, required);
        var result = job["properties"]!["result"]!;
        Assert.True(result["nullable"]?.GetValue<bool>() == true, $"result is not nullable: {result.ToJsonString()}");
        Assert.Null(result["type"]);
        Assert.Null(result["$ref"]);
        Assert.Null(job["properties"]!["state"]!["nullable"]);
        Assert.Contains("succeeded", Resolve(doc, job["properties"]!["state"]!)["enum"]!.AsArray().Select(e => e!.GetValue<string>()));
    }

    [Theory]
    [InlineData("SubmitJobRequest", "function")]
    [InlineData("SubmitMapRequest", "function,items")]
    [InlineData("SubmitJobsRequest", "jobs")]
    [InlineData("ScheduleRequest", "cron,function,name")]
    public async Task Request_bodies_require_what_the_API_refuses_a_body_without(string schema, string members)
    {
        var declared = (await DocumentAsync())["components"]!["schemas"]![schema]!;
        Assert.Equal(members, string.Join(',', declared["required"]!.AsArray().Select(r => r!.GetValue<string>()).Order()));
        foreach (var name in members.Split(','))
            Assert.True(declared["properties"]![name]!["nullable"] is null, $"{schema}.{name} is required but nullable");
    }

    [Fact]
    public async Task Result_endpoints_answer_200_and_202_with_different_schemas_and_typed_problems()
    {
        var doc = await DocumentAsync();
        foreach (var path in new[] { "/jobs/{id}/result", "/maps/{id}/results" })
        {
            var responses = doc["paths"]![path]!["get"]!["responses"]!;
            var ok = responses["200"]!["content"]!["application/json"]!["schema"]!["$ref"]?.GetValue<string>();
            var accepted = responses["202"]!["content"]!["application/json"]!["schema"]!["$ref"]?.GetValue<string>();
            Assert.NotNull(ok);
            Assert.NotNull(accepted);
            Assert.NotEqual(ok, accepted);
            var remote = responses["424"]!["content"]!["application/problem+json"]!["schema"]!;
            var properties = Resolve(doc, remote)["properties"]!.AsObject();
            foreach (var name in new[] { "exceptionType", "message", "stackTrace" }) Assert.True(properties.ContainsKey(name), $"{path} 424 lacks {name}");
        }
        var mapOk = Resolve(doc, doc["paths"]!["/maps/{id}/results"]!["get"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!);
        Assert.True(mapOk["properties"]!.AsObject().ContainsKey("results"));
    }

    [Fact]
    public async Task Map_stream_is_declared_as_ndjson_with_its_item_schema()
    {
        var doc = await DocumentAsync();
        var content = doc["paths"]!["/maps/{id}/stream"]!["get"]!["responses"]!["200"]!["content"]!.AsObject();
        Assert.True(content.ContainsKey("application/x-ndjson"), string.Join(", ", content.Select(c => c.Key)));
        var item = Resolve(doc, content["application/x-ndjson"]!["schema"]!);
        Assert.True(item["properties"]!.AsObject().ContainsKey("index"));
    }

    [Fact]
    public async Task Security_schemes_and_servers_are_declared()
    {
        var doc = await DocumentAsync();
        var schemes = doc["components"]!["securitySchemes"]!.AsObject();
        Assert.Contains(schemes, s => s.Value!["scheme"]?.GetValue<string>() == "bearer");
        Assert.Contains(schemes, s => s.Value!["scheme"]?.GetValue<string>() == "basic");
        Assert.NotEmpty(doc["security"]!.AsArray());
        Assert.NotEmpty(doc["servers"]!.AsArray());
        foreach (var (path, operations) in doc["paths"]!.AsObject())
        foreach (var (method, operation) in operations!.AsObject())
        {
            Assert.True(operation!["security"]?.AsArray().Count == 2, $"{method} {path} declares no security");
            Assert.True(operation["responses"]!.AsObject().ContainsKey("401"), $"{method} {path} declares no 401");
        }
    }

    [Fact]
    public async Task Real_answers_have_every_member_their_schema_requires_and_no_other()
    {
        var doc = await DocumentAsync();
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 7 } });
        await Http.WaitForJobAsync(id);
        Fits(doc, "JobView", await (await Http.GetAsync($"/jobs/{id}")).JsonAsync());
        Fits(doc, "JobResult", await (await Http.GetAsync($"/jobs/{id}/result")).JsonAsync());
        Fits(doc, "JobPage", await (await Http.GetAsync("/jobs")).JsonAsync());

        Fits(doc, "PoolView", await (await Http.GetAsync("/pool")).JsonAsync());
        foreach (var queue in JsonNode.Parse(await Http.GetStringAsync("/queues"))!.AsArray()) Fits(doc, "QueueView", queue!.AsObject());
        foreach (var function in JsonNode.Parse(await Http.GetStringAsync("/functions"))!.AsArray())
        {
            Fits(doc, "FunctionView", function!.AsObject());
            foreach (var parameter in function["parameters"]!.AsArray()) Fits(doc, "ParameterView", parameter!.AsObject());
        }

        var failed = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "nope" } });
        await Http.WaitForJobAsync(failed);
        var failedJob = await (await Http.GetAsync($"/jobs/{failed}")).JsonAsync();
        Fits(doc, "JobView", failedJob);
        Fits(doc, "RemoteException", failedJob["error"]!.AsObject());
        var remote = await Http.GetAsync($"/jobs/{failed}/result");
        Assert.Equal(424, (int)remote.StatusCode);
        Fits(doc, "RemoteErrorProblem", await remote.JsonAsync());
        Fits(doc, "NotFoundProblem", await (await Http.GetAsync($"/jobs/{Guid.NewGuid()}")).JsonAsync());
        Fits(doc, "HttpValidationProblemDetails", await (await Http.GetAsync("/jobs?limit=0")).JsonAsync());

        var submitted = await Http.PostAsJsonAsync("/maps?wait=30", new { function = "math.square", items = new[] { 1, 2, 3 } });
        var map = await submitted.JsonAsync();
        Fits(doc, "MapView", map);
        var results = await (await Http.GetAsync($"/maps/{map["id"]}/results?timeout=30")).JsonAsync();
        Fits(doc, "MapResults", results);
        var lines = (await Http.GetStringAsync($"/maps/{map["id"]}/stream")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        foreach (var line in lines) Fits(doc, "MapStreamItem", JsonNode.Parse(line)!.AsObject());

        var failedMap = await (await Http.PostAsJsonAsync("/maps?wait=30", new { function = "debug.fail", items = new[] { "a" } })).JsonAsync();
        var item = JsonNode.Parse((await Http.GetStringAsync($"/maps/{failedMap["id"]}/stream")).Trim())!.AsObject();
        Fits(doc, "MapStreamItem", item);
        Fits(doc, "RemoteException", item["error"]!.AsObject());
        var mapError = await Http.GetAsync($"/maps/{failedMap["id"]}/results");
        Assert.Equal(424, (int)mapError.StatusCode);
        Fits(doc, "RemoteErrorProblem", await mapError.JsonAsync());
    }

    /// <summary>The answer has every member <paramref name="schema"/> requires, none it does not list (unless it allows more), no null where it says never null, and only enumerated values.</summary>
    private static void Fits(JsonNode doc, string schema, JsonObject answer)
    {
        var declared = doc["components"]!["schemas"]![schema]!;
        var properties = declared["properties"]!.AsObject();
        foreach (var required in declared["required"]?.AsArray() ?? [])
            Assert.True(answer.ContainsKey(required!.GetValue<string>()), $"{schema}: the answer lacks required '{required}': {answer.ToJsonString()}");
        foreach (var (name, value) in answer)
        {
            var property = properties[name];
            if (property is null)
            {
                Assert.True(declared["additionalProperties"]?.GetValueKind() != System.Text.Json.JsonValueKind.False,
                    $"{schema}: the answer has '{name}', which the schema neither lists nor allows");
                continue;
            }
            if (value is null)
                Assert.True(property["nullable"]?.GetValue<bool>() == true, $"{schema}.{name} is null in the answer but not nullable in the schema");
            else if (property["enum"] is JsonArray values)
                Assert.Contains(value.ToJsonString(), values.Select(v => v!.ToJsonString()));
        }
    }

    private static JsonNode Resolve(JsonNode doc, JsonNode schema) =>
        schema["$ref"]?.GetValue<string>() is { } reference ? doc["components"]!["schemas"]![reference.Split('/')[^1]]! : schema;
}
