using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.SingleJobs;

public sealed class JobListingTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task Jobs_are_listed_newest_first_filtered_and_paged()
    {
        var squares = new List<Guid>();
        for (var i = 0; i < 5; i++) squares.Add(await Http.SubmitOkAsync(new { function = "math.square", args = new[] { i } }));
        var failing = await Http.SubmitOkAsync(new { function = "debug.fail", args = new[] { "x" } });
        await Http.WaitForJobAsync(failing);
        foreach (var id in squares) await Http.WaitForJobAsync(id);

        var byFunction = await (await Http.GetAsync("/jobs?function=math.square&limit=3")).JsonAsync();
        var page1 = byFunction["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).ToList();
        Assert.Equal(squares.AsEnumerable().Reverse().Take(3), page1);
        var cursor = byFunction["nextCursor"]!.GetValue<string>();
        var page2 = (await (await Http.GetAsync($"/jobs?function=math.square&limit=3&cursor={cursor}")).JsonAsync());
        Assert.Equal(squares.AsEnumerable().Reverse().Skip(3), page2["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()));
        Assert.Null(page2["nextCursor"]);

        var failed = await (await Http.GetAsync("/jobs?state=failed")).JsonAsync();
        Assert.Equal([failing], failed["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()));
        var otherQueue = await (await Http.GetAsync("/jobs?queue=elsewhere")).JsonAsync();
        Assert.Empty(otherQueue["items"]!.AsArray());
    }

    [Theory]
    [InlineData("/jobs?state=done", "state")]
    [InlineData("/jobs?limit=0", "limit")]
    [InlineData("/jobs?limit=100000", "limit")]
    [InlineData("/jobs?cursor=abc", "cursor")]
    public async Task Invalid_list_parameters_are_refused_with_400_naming_them(string path, string parameter)
    {
        var response = await Http.GetAsync(path);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.JsonAsync())["errors"]!.AsObject().ContainsKey(parameter));
    }
}
