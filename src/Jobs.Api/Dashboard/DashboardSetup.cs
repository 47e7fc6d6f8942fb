using System.Net;
using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.Dashboard;
using Hangfire.States;
using Jobs.Api.Security;
using Jobs.Core.Configuration;
using Jobs.Core.Queue;
using Jobs.Core.SingleJobs;
using Microsoft.AspNetCore.Authentication;

namespace Jobs.Api.Dashboard;

internal static class DashboardSetup
{
    public const string Path = "/hangfire";

    /// <summary>
    /// Cross-site request forgery: the dashboard's buttons POST with the browser's cached credentials (Basic, or
    /// none on loopback), so a page an admin visits could press them. With ASP.NET Core's antiforgery service
    /// registered, Hangfire puts a token in every page and refuses a POST without it (403); see also the Origin check
    /// in <see cref="MapJobsDashboard"/>.
    /// </summary>
    public static IServiceCollection AddJobsDashboard(this IServiceCollection services) =>
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "jobs-dashboard-csrf";
            o.Cookie.Path = Path;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.HttpOnly = true;
        });

    /// <summary>
    /// Hangfire's dashboard, served by the API from the same storage. With API keys configured it needs one
    /// (Bearer, or HTTP Basic with the key as password so a browser can log in), and a read-only key gets a
    /// read-only dashboard; without keys it is open to local requests only (Hangfire's default), matching the
    /// API's loopback-only binding. Each job's page also shows the Jobs view of it: state, attempts, progress.
    /// </summary>
    public static WebApplication MapJobsDashboard(this WebApplication app)
    {
        var store = app.Services.GetRequiredService<JobQueries>();
        var auth = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuthOptions>>().Value;
        if (auth.Enabled)
        {
            // Hangfire answers a refused request with a bare 401; a browser needs the Basic challenge to ask for the key.
            app.UseWhen(http => http.Request.Path.StartsWithSegments(Path) && http.User.Identity?.IsAuthenticated != true,
                unauthenticated => unauthenticated.Run(http => http.ChallengeAsync()));
        }
        // Every dashboard action is a POST. Refused here before Hangfire sees it: a request another site's page made
        // (Origin or Sec-Fetch-Site say so), and a read-only key (Hangfire answers 401 and the browser asks for a key again).
        app.UseWhen(http => http.Request.Path.StartsWithSegments(Path) && !HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method),
            action => action.Use(async (http, next) =>
            {
                if (CrossSite(http.Request) is { } why)
                    await RequestChecks.RefuseAsync(http, StatusCodes.Status403Forbidden, "Cross-site request refused", $"Dashboard actions are taken from the dashboard's own pages only ({why}).");
                // POST /stats is the pages' live counters: reading, which a read-only key may do.
                else if (auth.Enabled && !http.User.IsInRole(AuthOptions.AdminRole) && !http.Request.Path.StartsWithSegments(Path + "/stats"))
                    await RequestChecks.RefuseAsync(http, StatusCodes.Status403Forbidden, "Not allowed for this key", "This API key is read-only: the dashboard's actions need an admin key.");
                else
                    await next(http);
            }));
        // A job's page and its actions name a Hangfire job id, which Hangfire.PostgreSql parses as a bigint: "abc", a
        // GUID or a number out of range threw there (500 with a stack trace in the log). Unknown ids are 404 here too.
        app.UseWhen(http => JobIdInPath(http.Request.Path) is not null,
            page => page.Use(async (http, next) =>
            {
                var id = JobIdInPath(http.Request.Path)!;
                if (!long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)
                    || !JobExists(http.RequestServices.GetRequiredService<JobStorage>(), id))
                    await RequestChecks.RefuseAsync(http, StatusCodes.Status404NotFound, "No such Hangfire job",
                        $"There is no Hangfire job '{(id.Length > 40 ? id[..40] + "…" : id)}'; its id is a number the dashboard links to.");
                else
                    await next(http);
            }));
        JobHistoryRenderer.Register(ProcessingState.StateName, (helper, data) => RenderProcessing(helper, data, store));
        AddPausedQueues(app.Services.GetRequiredService<PausedQueues>());
        app.UseHangfireDashboard(Path, new DashboardOptions
        {
            DashboardTitle = "Jobs",
            AppPath = "/swagger",
            DisplayStorageConnectionString = false,
            Authorization = auth.Enabled ? [new KeyAuthorization()] : [new LocalRequestsOnlyAuthorizationFilter()],
            IsReadOnlyFunc = context => auth.Enabled && !context.GetHttpContext().User.IsInRole(AuthOptions.AdminRole),
        });
        return app;
    }

    /// <summary>
    /// Paused queues (POST /queues/{name}/pause) on every dashboard page: a menu entry "Paused queues" with their count,
    /// highlighted while any is paused, linking to GET /queues (which names them, with depth and workers).
    /// </summary>
    private static void AddPausedQueues(PausedQueues paused)
    {
        var metric = new DashboardMetric("jobs:paused-queues", "Paused queues", _ =>
        {
            // The dashboard renders synchronously; one small read per page.
            var count = paused.ListAsync(CancellationToken.None).GetAwaiter().GetResult().Count;
            return new Metric(count) { Style = count > 0 ? MetricStyle.Warning : MetricStyle.Default, Highlighted = count > 0 };
        });
        DashboardMetrics.AddMetric(metric);
        NavigationMenu.Items.Add(_ => new MenuItem("Paused queues", "/queues") { Metric = metric });
    }

    /// <summary>
    /// The Processing entry of a job's history, as Hangfire draws it (server, worker) plus the progress the
    /// function reported. Hangfire's job-details extension point is internal; its state renderers are public.
    /// </summary>
    private static NonEscapedString RenderProcessing(HtmlHelper helper, IDictionary<string, string> data, JobQueries store)
    {
        var html = new StringBuilder("<dl class=\"dl-horizontal\">");
        if (data.TryGetValue("ServerId", out var server)) Property(html, "Server:", helper.ServerId(server).ToString());
        if (data.TryGetValue("WorkerId", out var worker)) Property(html, "Worker:", WebUtility.HtmlEncode(worker.Length > 8 ? worker[..8] : worker));
        // The job page is /hangfire/jobs/details/{hangfire job id}; the dashboard renders synchronously.
        var hangfireJobId = helper.Page.RequestPath.TrimEnd('/').Split('/')[^1];
        var rows = store.GetByHangfireJobIdAsync(hangfireJobId, 51, CancellationToken.None).GetAwaiter().GetResult();
        var row = rows.Count == 1 ? rows[0] : null;
        if (row is not null)
        {
            Property(html, "Jobs id:", $"<a href=\"/jobs/{row.Id}\">{row.Id}</a>");
            Property(html, "Attempt:", row.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        else if (rows.Count > 1)
        {
            // A batch: submissions that arrived together, run one after another by this Hangfire job.
            var list = new StringBuilder("<ol class=\"jobs-batch\" style=\"padding-left:1.5em;margin:0\">");
            foreach (var member in rows.Take(50))
                list.Append("<li><a href=\"/jobs/").Append(member.Id).Append("\">").Append(member.Id).Append("</a> ")
                    .Append(WebUtility.HtmlEncode(member.Function)).Append(": ").Append(member.State).Append("</li>");
            if (rows.Count > 50) list.Append("<li>…</li>");
            Property(html, "Jobs:", list.Append("</ol>").ToString());
        }
        if (row?.Progress is { } progress)
        {
            using var doc = JsonDocument.Parse(progress);
            var fraction = doc.RootElement.GetProperty("fraction").GetDouble();
            var message = doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            var percent = (fraction * 100).ToString("0", System.Globalization.CultureInfo.InvariantCulture);
            Property(html, "Progress:",
                $"<div class=\"progress\" style=\"margin:0;max-width:300px\"><div class=\"progress-bar jobs-progress\" role=\"progressbar\" " +
                $"aria-valuenow=\"{percent}\" aria-valuemin=\"0\" aria-valuemax=\"100\" style=\"width:{percent}%\">{percent}%</div></div>" +
                (message is null ? "" : $"<span class=\"jobs-progress-message\">{WebUtility.HtmlEncode(message)}</span>"));
        }
        return new NonEscapedString(html.Append("</dl>").ToString());
    }

    /// <summary>The Hangfire job id a dashboard job page or job action names ("/hangfire/jobs/details/42"), or null.</summary>
    private static string? JobIdInPath(PathString path)
    {
        if (!path.StartsWithSegments(Path + "/jobs", out var rest)) return null;
        var segments = rest.Value!.Trim('/').Split('/');
        return segments switch
        {
            ["details", var id] => Uri.UnescapeDataString(id),
            ["actions", _, var id] => Uri.UnescapeDataString(id),
            ["details" or "actions", ..] => "",
            _ => null,
        };
    }

    private static bool JobExists(JobStorage storage, string id)
    {
        using var connection = storage.GetConnection();
        return connection.GetJobData(id) is not null;
    }

    /// <summary>Why the request came from another site's page, or null: the browser says so in Sec-Fetch-Site or Origin.</summary>
    private static string? CrossSite(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && site is not ("same-origin" or "none")) return $"Sec-Fetch-Site: {site}";
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return null;
        // "null" (a sandboxed frame, a data: URL) and any other host than this service's own are refused. The host
        // name alone is compared: behind a TLS proxy the browser's scheme and port differ from what Kestrel sees.
        return Uri.TryCreate(origin, UriKind.Absolute, out var uri) && string.Equals(uri.Host, request.Host.Host, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"Origin: {(origin.Length > 100 ? origin[..100] + "…" : origin)}";
    }

    private sealed class KeyAuthorization : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context) => context.GetHttpContext().User.Identity?.IsAuthenticated == true;
    }

    private static void Property(StringBuilder html, string name, string valueHtml) =>
        html.Append("<dt>").Append(name).Append("</dt><dd>").Append(valueHtml).Append("</dd>");
}
