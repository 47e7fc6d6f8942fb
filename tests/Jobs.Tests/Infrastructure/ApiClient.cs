using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Tests.Infrastructure;

/// <summary>The few HTTP calls the tests make again and again, with the raw response kept for assertions.</summary>
public static class ApiClient
{
    public static Task<HttpResponseMessage> SubmitAsync(this HttpClient http, object body, string query = "") =>
        http.PostAsJsonAsync("/jobs" + query, body);

    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient http, string path, string body, string contentType = "application/json") =>
        http.PostAsync(path, new StringContent(body, Encoding.UTF8, contentType));

    public static async Task<JsonObject> JsonAsync(this HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();

    /// <summary>Submits and returns the new job's id, failing the test unless the API accepted it.</summary>
    public static async Task<Guid> SubmitOkAsync(this HttpClient http, object body)
    {
        var response = await http.SubmitAsync(body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!["id"]!.GetValue<Guid>();
    }

    /// <summary>Waits (server-side, via ?wait) until the job is finished and returns its JobView.</summary>
    public static async Task<JsonObject> WaitForJobAsync(this HttpClient http, Guid id, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            // At most 50 s a request: the server caps ?wait at Jobs:MaxWaitSeconds (60), the HttpClient times out at 60.
            var job = await (await http.GetAsync($"/jobs/{id}?wait={Math.Clamp((int)(deadline - DateTime.UtcNow).TotalSeconds, 1, 50)}")).JsonAsync();
            if (job["ready"]!.GetValue<bool>() || DateTime.UtcNow >= deadline) return job;
        }
    }

    public static DateTime Time(this JsonNode? node) => node!.GetValue<DateTime>().ToUniversalTime();

    public static string Compact(this JsonNode? node) => node?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null";
}
