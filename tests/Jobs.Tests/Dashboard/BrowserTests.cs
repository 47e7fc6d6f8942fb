using System.Net.Http.Json;
using Jobs.Launcher.Processes;
using Jobs.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Jobs.Tests.Dashboard;

/// <summary>
/// Swagger UI and the Hangfire dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
/// "Try it out" on POST /jobs submits math.square and shows the 202; the dashboard lists that job as succeeded
/// under its function name. Screenshots go to tests/Jobs.Tests/TestResults/screenshots.
/// </summary>
public sealed class BrowserTests(SystemFixture system) : SystemTest(system)
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly string Screenshots = Path.Combine(ProgramPaths.RepositoryRoot, "tests", "Jobs.Tests", "TestResults", "screenshots");
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (.ci/run does)");
        Directory.CreateDirectory(Screenshots);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
    }

    public override async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Swagger_try_it_out_submits_a_job_and_the_dashboard_lists_it_as_succeeded()
    {
        var page = await _browser.NewPageAsync(new() { BaseURL = Fixture.ApiUrl.ToString() });

        await page.GotoAsync("/swagger");
        var operation = page.Locator("#operations-Jobs-SubmitJob");
        await operation.Locator(".opblock-summary").ClickAsync();
        await operation.GetByRole(AriaRole.Button, new() { Name = "Try it out" }).ClickAsync();
        await operation.Locator("textarea.body-param__text").FillAsync("""{ "function": "math.square", "args": [7] }""");
        await operation.GetByRole(AriaRole.Button, new() { Name = "Execute" }).ClickAsync();
        var status = operation.Locator(".live-responses-table .response .response-col_status").First;
        await Assertions.Expect(status).ToHaveTextAsync("202", new() { Timeout = 15_000 });
        var body = await operation.Locator(".live-responses-table .response-col_description pre").First.InnerTextAsync();
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "swagger-try-it-out.png"), FullPage = true });
        var id = System.Text.Json.Nodes.JsonNode.Parse(body)!["id"]!.GetValue<Guid>();
        Assert.Equal("succeeded", (await Http.WaitForJobAsync(id))["state"]!.GetValue<string>());

        // Hangfire's dashboard, as an operator opens it: the succeeded list shows the job by its call.
        await Eventually.TrueAsync(async () =>
        {
            await page.GotoAsync("/hangfire/jobs/succeeded");
            return await page.GetByText("math.square(7)").CountAsync() > 0;
        }, "the dashboard lists math.square(7) under Succeeded", 20);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "dashboard-succeeded.png"), FullPage = true });
        await page.GetByText("math.square(7)").First.ClickAsync();
        await Assertions.Expect(page.Locator("body")).ToContainTextAsync(id.ToString());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "dashboard-job.png"), FullPage = true });
    }

    [Fact]
    public async Task The_dashboards_own_delete_button_works_and_another_sites_form_cannot_press_it()
    {
        var id = await Http.SubmitOkAsync(new { function = "noop", delaySeconds = 600 });
        await Eventually.TrueAsync(async () => await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id) is not null, "dispatched");
        var hangfireJobId = (await Database.ScalarAsync<string>("SELECT hangfire_job_id FROM jobs.job WHERE id = $1", id))!;
        var context = await _browser.NewContextAsync();

        // A page on another site that posts the dashboard's delete form as soon as it loads.
        var evil = await context.NewPageAsync();
        await evil.RouteAsync("http://evil.example/**", route => route.FulfillAsync(new()
        {
            ContentType = "text/html",
            Body = $"<form method=post action='{Fixture.ApiUrl}hangfire/jobs/scheduled/delete'><input name='jobs[]' value='{hangfireJobId}'></form>" +
                   "<script>document.forms[0].submit()</script>",
        }));
        var forged = evil.WaitForResponseAsync(r => r.Url.Contains("/hangfire/jobs/scheduled/delete"));
        await evil.GotoAsync("http://evil.example/", new() { WaitUntil = WaitUntilState.Commit });
        Assert.Equal(403, (await forged).Status);
        Assert.Equal("scheduled", (await Http.GetFromJsonAsync<System.Text.Json.Nodes.JsonObject>($"/jobs/{id}"))!["state"]!.GetValue<string>());

        // The dashboard itself: tick the job on the Scheduled page and press Delete.
        var page = await context.NewPageAsync();
        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GotoAsync($"{Fixture.ApiUrl}hangfire/jobs/scheduled");
        await page.Locator($"input.js-jobs-list-checkbox[value='{hangfireJobId}']").CheckAsync();
        var pressed = page.WaitForResponseAsync(r => r.Url.Contains("/hangfire/jobs/scheduled/delete"));
        await page.Locator("button.js-jobs-list-command[data-url$='/jobs/scheduled/delete']").ClickAsync();
        Assert.Equal(204, (await pressed).Status);
        var job = await Http.WaitForJobAsync(id, 15);
        Assert.Equal("canceled", job["state"]!.GetValue<string>());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "dashboard-delete.png"), FullPage = true });
        await context.DisposeAsync();
    }
}
