using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>What the map tests share: submitting a map that must be accepted, and a queue with workers of the test's own.</summary>
public static class MapClient
{
    /// <summary>POST /maps, asserting 202; the map and how long the API took to accept it.</summary>
    public static async Task<(JsonObject Map, TimeSpan Took)> SubmitMapAcceptedAsync(this HttpClient http, object body)
    {
        var clock = Stopwatch.StartNew();
        var response = await http.PostAsJsonAsync("/maps", body);
        var took = clock.Elapsed;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        return (JsonNode.Parse(text)!.AsObject(), took);
    }

    /// <summary>A queue of the test's own, served by one worker of two slots that is up (so a map's window counts them).</summary>
    public static async Task<(string Queue, ChildProcess Worker)> TwoSlotQueueAsync(this SystemFixture fixture, string name)
    {
        var queue = SystemFixture.PrivateQueue();
        var worker = fixture.StartWorker(name, [queue], workerCount: 2);
        await Eventually.TrueAsync(async () => await fixture.Database.ScalarAsync<long>(
            "SELECT count(*) FROM hangfire.server WHERE data::text LIKE '%' || $1 || '%'", queue) > 0, "the worker serves the queue");
        return (queue, worker);
    }
}
