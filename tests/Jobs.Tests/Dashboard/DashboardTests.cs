using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Dashboard;

public sealed class DashboardTests(SystemFixture system) : SystemTest(system)
{
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
    public async Task Progress_shows_on_the_jobs_dashboard_page()
    {
        var id = await Http.SubmitOkAsync(new { function = "progress.demo", args = new[] { 40, 100 } });
        await Eventually.TrueAsync(async () => (await (await Http.GetAsync($"/jobs/{id}")).JsonAsync())["progress"] is not null, "progress reported");
        var hangfireJobId = await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id);

        var page = await Http.GetStringAsync($"/hangfire/jobs/details/{hangfireJobId}");

        Assert.Contains("jobs-progress", page);
        Assert.Contains(id.ToString(), page);
        await Http.DeleteAsync($"/jobs/{id}");
    }
}
