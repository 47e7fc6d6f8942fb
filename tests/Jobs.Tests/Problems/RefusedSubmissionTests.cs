using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Problems;

/// <summary>Bad input gets a clear problem+json and never reaches the queue.</summary>
public sealed class RefusedSubmissionTests(SystemFixture system) : SystemTest(system)
{

    private async Task AssertNothingStoredAsync()
    {
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM hangfire.job"));
    }

    [Fact]
    public async Task Unknown_function_is_refused_with_404_naming_it()
    {
        var response = await Http.SubmitAsync(new { function = "math.sqaure", args = new[] { 7 } });

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.Contains("math.sqaure", problem["detail"]!.GetValue<string>());
        Assert.Equal(404, problem["status"]!.GetValue<int>());
        Assert.NotNull(problem["type"]);
        Assert.NotNull(problem["title"]);
        await AssertNothingStoredAsync();
    }

    [Theory]
    [InlineData("""{"function":"math.square"}""", "x", "missing required argument 'x'")]
    [InlineData("""{"function":"math.square","args":[1,2]}""", "args", "takes 1 positional argument but 2 were given")]
    [InlineData("""{"function":"math.square","kwargs":{"y":1}}""", "y", "unexpected keyword argument 'y'")]
    [InlineData("""{"function":"math.square","args":[1],"kwargs":{"x":1}}""", "x", "multiple values for argument 'x'")]
    [InlineData("""{"function":"math.square","args":["7"]}""", "x", "must be a number")]
    [InlineData("""{"function":"primes.count","args":[7.5]}""", "limit", "must be an integer")]
    [InlineData("""{"function":"text.sha256","args":[null]}""", "text", "must not be null")]
    [InlineData("""{"function":"math.square","args":{"x":1}}""", "args", "args must be a JSON array")]
    [InlineData("""{"function":"math.square","kwargs":[1]}""", "kwargs", "kwargs must be a JSON object")]
    [InlineData("""{"function":"noop","queue":"Not A Queue!"}""", "queue", "not a valid queue")]
    [InlineData("""{"args":[1]}""", "function", "name of a registered function")]
    public async Task Arguments_that_do_not_bind_are_refused_with_400_naming_the_parameter(string body, string parameter, string message)
    {
        var response = await Http.PostRawAsync("/jobs", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        var errors = problem["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(parameter), $"errors should name '{parameter}': {problem.Compact()}");
        Assert.Contains(message, problem["detail"]!.GetValue<string>());
        await AssertNothingStoredAsync();
    }

    [Theory]
    [InlineData("/jobs", """{"function":"~"}""", 404, "function")]
    [InlineData("/maps", """{"function":"~","items":[1]}""", 404, "function")]
    [InlineData("/schedules", """{"name":"long","cron":"* * * * *","function":"~"}""", 404, "function")]
    [InlineData("/jobs", """{"function":"noop","queue":"~"}""", 400, "queue")]
    [InlineData("/maps", """{"function":"math.square","items":[1],"queue":"~"}""", 400, "queue")]
    [InlineData("/schedules", """{"name":"long","cron":"* * * * *","function":"noop","queue":"~"}""", 400, "queue")]
    [InlineData("/schedules", """{"name":"long","cron":"~","function":"noop"}""", 400, "cron")]
    [InlineData("/schedules", """{"name":"long","cron":"* * * * *","timeZone":"~","function":"noop"}""", 400, "timeZone")]
    public async Task Jobs_maps_and_schedules_refuse_alike_naming_the_field_and_quoting_at_most_100_characters(string path, string template, int status, string field)
    {
        // '~' stands for 5,000 characters of input; maps and schedules used to send them all back.
        var response = await Http.PostRawAsync(path, template.Replace("~", "Q" + new string('x', 4999)));

        Assert.Equal(status, (int)response.StatusCode);
        var problem = await response.JsonAsync();
        var detail = problem["detail"]!.GetValue<string>();
        Assert.True(detail.Length < 400, $"{detail.Length} characters: {detail[..Math.Min(200, detail.Length)]}…");
        Assert.Contains("Qxxx", detail);
        Assert.True(problem["errors"]?[field] is not null || problem["field"]?.GetValue<string>() == field, $"the field is not named: {problem.Compact()}");
        await AssertNothingStoredAsync();
    }

    [Theory]
    [InlineData("""{"function":"math.square","args":[7""")]
    [InlineData("""not json""")]
    [InlineData("""{"function":"math.square","retires":3}""")]
    [InlineData("""{"function":42}""")]
    public async Task Malformed_json_is_refused_with_400_problem(string body)
    {
        var response = await Http.PostRawAsync("/jobs", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.False(string.IsNullOrWhiteSpace(problem["detail"]?.GetValue<string>()), problem.Compact());
        await AssertNothingStoredAsync();
    }

    [Theory]
    [InlineData("/jobs", """{"function":"noop","timeoutSeconds":"NaN"}""", "timeoutSeconds")]
    [InlineData("/jobs", """{"function":"noop","timeoutSeconds":"Infinity"}""", "timeoutSeconds")]
    [InlineData("/jobs", """{"function":"noop","timeoutSeconds":"5"}""", "timeoutSeconds")]
    [InlineData("/jobs", """{"function":"noop","delaySeconds":"NaN"}""", "delaySeconds")]
    [InlineData("/jobs", """{"function":"noop","delaySeconds":"-Infinity"}""", "delaySeconds")]
    [InlineData("/jobs", """{"function":"noop","retries":"2"}""", "retries")]
    [InlineData("/maps", """{"function":"math.square","items":[1],"chunksize":"1"}""", "chunksize")]
    public async Task A_number_field_takes_a_JSON_number_only(string path, string body, string field)
    {
        var response = await Http.PostRawAsync(path, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.Contains(field, problem.Compact(), StringComparison.OrdinalIgnoreCase);
        await AssertNothingStoredAsync();
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.map"));
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/jobs")).StatusCode);
    }

    [Fact]
    public async Task Empty_body_is_refused_with_400_problem()
    {
        var response = await Http.PostRawAsync("/jobs", "");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Wrong_content_type_is_refused_with_415()
    {
        var response = await Http.PostRawAsync("/jobs", """{"function":"noop"}""", "text/plain");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task Oversized_body_is_refused_with_413_problem()
    {
        var huge = new string('a', 2 * 1024 * 1024);

        var response = await Http.SubmitAsync(new { function = "text.sha256", args = new[] { huge } });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.JsonAsync();
        Assert.NotNull(problem["type"]);
        Assert.Contains("Api:MaxRequestBodyBytes", problem["detail"]!.GetValue<string>());
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task Refusals_leave_jobs_accepted_earlier_intact()
    {
        var id = await Http.SubmitOkAsync(new { function = "math.square", args = new[] { 12 } });

        await Http.PostRawAsync("/jobs", """{"function":"math.square","args":[7""");
        await Http.SubmitAsync(new { function = "nope" });
        await Http.SubmitAsync(new { function = "math.square", args = new[] { "x" } });

        var job = await Http.WaitForJobAsync(id);
        Assert.Equal(144, job["result"]!.GetValue<double>());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Theory]
    [InlineData("/jobs?wait=-1")]
    [InlineData("/jobs?wait=soon")]
    public async Task Invalid_wait_is_refused_with_400(string path)
    {
        var response = await Http.PostRawAsync(path, """{"function":"noop"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        await AssertNothingStoredAsync();
    }
}
