using System.Net;
using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.Dashboard;
using Hangfire.States;
using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Authentication;
using Jobs.Core.Storage;

namespace Jobs.Api.Dashboard;

public static class DashboardSetup
{
    public const string Path = "/hangfire";

    /// <summary>
    /// Hangfire's dashboard, served by the API from the same storage. With API keys configured it needs one
    /// (Bearer, or HTTP Basic with the key as password so a browser can log in), and a read-only key gets a
    /// read-only dashboard; without keys it is open to local requests only (Hangfire's default), matching the
    /// API's loopback-only binding. Each job's page also shows the Jobs view of it: state, attempts, progress.
    /// </summary>
    public static WebApplication MapJobsDashboard(this WebApplication app)
    {
        var store = app.Services.GetRequiredService<JobStore>();
        var auth = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuthOptions>>().Value;
        if (auth.Enabled)
        {
            // Hangfire answers a refused request with a bare 401; a browser needs the Basic challenge to ask for the key.
            app.UseWhen(http => http.Request.Path.StartsWithSegments(Path) && http.User.Identity?.IsAuthenticated != true,
                unauthenticated => unauthenticated.Run(http => http.ChallengeAsync()));
        }
        JobHistoryRenderer.Register(ProcessingState.StateName, (helper, data) => RenderProcessing(helper, data, store));
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
    /// The Processing entry of a job's history, as Hangfire draws it (server, worker) plus the progress the
    /// function reported. Hangfire's job-details extension point is internal; its state renderers are public.
    /// </summary>
    private static NonEscapedString RenderProcessing(HtmlHelper helper, IDictionary<string, string> data, JobStore store)
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

    private sealed class KeyAuthorization : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context) => context.GetHttpContext().User.Identity?.IsAuthenticated == true;
    }

    private static void Property(StringBuilder html, string name, string valueHtml) =>
        html.Append("<dt>").Append(name).Append("</dt><dd>").Append(valueHtml).Append("</dd>");
}
