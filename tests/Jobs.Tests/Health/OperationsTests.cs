using System.Net;
using System.Text.Json.Nodes;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Health;

/// <summary>Swagger UI, the OpenAPI document, the Hangfire dashboard and the health endpoints.</summary>
public sealed class OperationsTests(SystemFixture system) : SystemTest(system)
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

    [Fact]
    public async Task Swagger_ui_and_dashboard_load()
    {
        var swagger = await Http.GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, swagger.StatusCode);
        Assert.Contains("swagger-ui", await swagger.Content.ReadAsStringAsync());

        var dashboard = await Http.GetAsync("/hangfire");
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Contains("Jobs", await dashboard.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Dashboard_lists_jobs_under_their_function_name_with_readable_arguments()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.pow", args = new[] { 3 }, kwargs = new { y = 4 } });
        await Http.WaitForJobAsync(id);
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<long>(
            "SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'") == 1L, "Hangfire marked the job succeeded");

        var succeeded = await Http.GetStringAsync("/hangfire/jobs/succeeded");

        Assert.Contains("math.pow(3, y=4)", succeeded);
    }

    [Fact]
    public async Task Health_endpoints_report_live_and_ready()
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/health/live")).StatusCode);
        var ready = await Http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }
}
