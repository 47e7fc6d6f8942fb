using System.Net;
using System.Net.Http.Json;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Idempotency;

/// <summary>Idempotency-Key: a retried submission never makes a second job, even when the retries race.</summary>
public sealed class IdempotencyTests(SystemFixture system) : SystemTest(system)
{
    private Task<HttpResponseMessage> SubmitWithKey(string key, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return Http.SendAsync(request);
    }

    [Fact]
    public async Task Same_key_and_body_returns_the_same_job()
    {
        var key = Guid.NewGuid().ToString();
        var first = await SubmitWithKey(key, new { function = "math.square", args = new[] { 5 } });
        var second = await SubmitWithKey(key, new { function = "math.square", args = new[] { 5 } });

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal((await first.JsonAsync())["id"]!.GetValue<Guid>(), (await second.JsonAsync())["id"]!.GetValue<Guid>());
        Assert.Equal("true", second.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Concurrent_duplicates_make_one_job()
    {
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 20)
            .Select(_ => SubmitWithKey(key, new { function = "text.sha256", args = new[] { "same" } })));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        var ids = await Task.WhenAll(responses.Select(async r => (await r.JsonAsync())["id"]!.GetValue<Guid>()));
        Assert.Single(ids.Distinct());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM hangfire.job"));
    }

    [Fact]
    public async Task Same_key_with_a_different_body_is_422()
    {
        var key = Guid.NewGuid().ToString();
        await SubmitWithKey(key, new { function = "math.square", args = new[] { 5 } });

        var response = await SubmitWithKey(key, new { function = "math.square", args = new[] { 6 } });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(key, (await response.JsonAsync())["detail"]!.GetValue<string>());
        Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM jobs.job"));
    }

    [Fact]
    public async Task Refused_submission_does_not_use_up_its_key()
    {
        var key = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.BadRequest, (await SubmitWithKey(key, new { function = "math.square" })).StatusCode);

        var response = await SubmitWithKey(key, new { function = "math.square", args = new[] { 2 } });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }
}
