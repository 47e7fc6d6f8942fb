using System.Text.RegularExpressions;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// The dashboard's buttons as a browser presses them: a page first (it sets the antiforgery cookie and carries the
/// token in its csrf-header/csrf-token meta tags), then the POST with the token in that header.
/// </summary>
public static partial class DashboardActions
{
    public static Task<HttpResponseMessage> PostActionAsync(HttpClient http, string action, string hangfireJobId,
        Action<HttpRequestMessage>? authorize = null) =>
        PostAsync(http, $"/hangfire/jobs/{action}", [new("jobs[]", hangfireJobId)], authorize);

    public static async Task<HttpResponseMessage> PostAsync(HttpClient http, string path, IEnumerable<KeyValuePair<string, string>> form,
        Action<HttpRequestMessage>? authorize = null)
    {
        var page = new HttpRequestMessage(HttpMethod.Get, "/hangfire/jobs/scheduled");
        authorize?.Invoke(page);
        var html = await (await http.SendAsync(page)).Content.ReadAsStringAsync();
        var header = MetaTag().Matches(html).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var post = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        authorize?.Invoke(post);
        if (header.TryGetValue("csrf-header", out var name) && header.TryGetValue("csrf-token", out var token)) post.Headers.Add(name, token);
        return await http.SendAsync(post);
    }

    [GeneratedRegex("""<meta name="(csrf-header|csrf-token)" content="([^"]*)">""")]
    private static partial Regex MetaTag();
}
