using Hangfire;
using Hangfire.Dashboard;

namespace Jobs.Api.Dashboard;

public static class DashboardSetup
{
    public const string Path = "/hangfire";

    /// <summary>
    /// Hangfire's dashboard, served by the API from the same storage. Until API keys exist (a later issue) it
    /// is open to local requests only, Hangfire's own default, matching the API's loopback-only binding.
    /// </summary>
    public static WebApplication MapJobsDashboard(this WebApplication app)
    {
        app.UseHangfireDashboard(Path, new DashboardOptions
        {
            DashboardTitle = "Jobs",
            AppPath = "/swagger",
            DisplayStorageConnectionString = false,
            Authorization = [new LocalRequestsOnlyAuthorizationFilter()],
        });
        return app;
    }
}
