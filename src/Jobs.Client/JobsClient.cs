using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Client;

/// <summary>
/// Pool's verbs against a Jobs service: <see cref="ApplyAsync"/> (apply), <see cref="ApplyAsyncAsync"/>
/// (apply_async → <see cref="JobHandle"/>), <see cref="MapAsync"/> (map / starmap) and <see cref="ImapAsync"/>
/// (imap / imap_unordered). A function that raised in a worker surfaces as <see cref="RemoteJobException"/>; a
/// request the service refused as <see cref="JobsRequestException"/> with its problem+json.
/// </summary>
public sealed class JobsClient : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    /// <summary>The longest server-side wait one request asks for (the service caps it at Jobs:MaxWaitSeconds).</summary>
    internal static readonly TimeSpan LongestWait = TimeSpan.FromSeconds(30);

    private readonly bool _ownsHttp;
    internal HttpClient Http { get; }

    /// <param name="baseAddress">The API, e.g. http://127.0.0.1:5080.</param>
    /// <param name="apiKey">Sent as a Bearer token when the service has Auth:ApiKeys.</param>
    public JobsClient(Uri baseAddress, string? apiKey = null)
        : this(new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan }, apiKey) => _ownsHttp = true;

    /// <summary>Uses the caller's HttpClient (its BaseAddress must be the API); the caller disposes it.</summary>
    public JobsClient(HttpClient http, string? apiKey = null)
    {
        Http = http;
        if (apiKey is not null) Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    /// <summary>apply: runs <paramref name="function"/> and returns its result as <typeparamref name="T"/>.</summary>
    public async Task<T?> ApplyAsync<T>(string function, object?[]? args = null, IReadOnlyDictionary<string, object?>? kwargs = null,
        JobOptions? options = null, CancellationToken ct = default)
    {
        var job = await ApplyAsyncAsync(function, args, kwargs, options, ct);
        return await job.GetAsync<T>(Timeout.InfiniteTimeSpan, ct);
    }

    /// <summary>apply_async: submits the job (durable once this returns) and returns its handle.</summary>
    public async Task<JobHandle> ApplyAsyncAsync(string function, object?[]? args = null, IReadOnlyDictionary<string, object?>? kwargs = null,
        JobOptions? options = null, CancellationToken ct = default)
    {
        var body = new JsonObject
        {
            ["function"] = function,
            ["args"] = JsonSerializer.SerializeToNode(args ?? [], Json),
            ["kwargs"] = JsonSerializer.SerializeToNode(kwargs ?? new Dictionary<string, object?>(), Json),
        };
        options?.WriteTo(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(body) };
        if (options?.IdempotencyKey is { } key) request.Headers.Add("Idempotency-Key", key);
        using var response = await Http.SendAsync(request, ct);
        return new JobHandle(this, await ReadAsync(response, ct), WarningOf(response));
    }

    /// <summary>
    /// Runs a failed or canceled job again (POST /jobs/{id}/retry): the same id, its attempts going on. Throws
    /// <see cref="JobsRequestException"/> 409 when the job is not failed or canceled, 404 when there is none, 403 without an admin key.
    /// </summary>
    public async Task<JobHandle> RetryAsync(Guid id, CancellationToken ct = default)
    {
        using var response = await Http.PostAsync($"/jobs/{id}/retry", null, ct);
        return new JobHandle(this, await ReadAsync(response, ct), WarningOf(response));
    }

    /// <summary>GET /queues: every queue's depth, oldest waiting age, paused flag, live workers and warning.</summary>
    public async Task<IReadOnlyList<QueueInfo>> QueuesAsync(CancellationToken ct = default)
    {
        using var response = await Http.GetAsync("/queues", ct);
        await EnsureAcceptedAsync(response, ct);
        return (await response.Content.ReadFromJsonAsync<List<QueueInfo>>(Json, ct))!;
    }

    /// <summary>GET /queues/{name}.</summary>
    public Task<QueueInfo> QueueAsync(string name, CancellationToken ct = default) => QueueCallAsync(HttpMethod.Get, name, "", ct);

    /// <summary>Pauses a queue (POST /queues/{name}/pause): workers take none of its jobs until it is resumed; running ones finish.</summary>
    public Task<QueueInfo> PauseQueueAsync(string name, CancellationToken ct = default) => QueueCallAsync(HttpMethod.Post, name, "/pause", ct);

    /// <summary>Resumes a queue (POST /queues/{name}/resume): its waiting jobs start within about a second.</summary>
    public Task<QueueInfo> ResumeQueueAsync(string name, CancellationToken ct = default) => QueueCallAsync(HttpMethod.Post, name, "/resume", ct);

    private async Task<QueueInfo> QueueCallAsync(HttpMethod method, string name, string action, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, $"/queues/{Uri.EscapeDataString(name)}{action}");
        using var response = await Http.SendAsync(request, ct);
        await EnsureAcceptedAsync(response, ct);
        return (await response.Content.ReadFromJsonAsync<QueueInfo>(Json, ct))!;
    }

    /// <summary>The text of a response's Warning header (<c>199 jobs "…"</c>): why an accepted job may wait.</summary>
    internal static string? WarningOf(HttpResponseMessage response) =>
        response.Headers.Warning.Select(w => w.Text.Trim('"')).FirstOrDefault();

    /// <summary>map (or starmap, with <paramref name="star"/>): the results in input order; throws the first failing item's exception.</summary>
    public async Task<IReadOnlyList<T?>> MapAsync<T>(string function, IEnumerable<object?> items, bool star = false, int? chunksize = null,
        string? queue = null, CancellationToken ct = default)
    {
        var id = await SubmitMapAsync(function, items, star, chunksize, queue, ct);
        while (true)
        {
            using var response = await Http.GetAsync($"/maps/{id}/results?timeout={LongestWait.TotalSeconds:0}", ct);
            if (response.StatusCode == HttpStatusCode.Accepted) continue;
            var body = await ReadAsync(response, ct, allowFailed: true);
            if ((int)response.StatusCode == 424) throw RemoteJobException.From(body, body["index"]?.GetValue<int>());
            return body["results"]!.AsArray().Select(r => r.Deserialize<T>(Json)).ToArray();
        }
    }

    /// <summary>imap (<paramref name="ordered"/>) or imap_unordered: each result as soon as it is ready.</summary>
    public async IAsyncEnumerable<T?> ImapAsync<T>(string function, IEnumerable<object?> items, bool ordered = true, int? chunksize = null,
        string? queue = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var id = await SubmitMapAsync(function, items, star: false, chunksize, queue, ct);
        using var response = await Http.GetAsync($"/maps/{id}/stream?order={(ordered ? "input" : "completion")}", HttpCompletionOption.ResponseHeadersRead, ct);
        await EnsureAcceptedAsync(response, ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0) continue;
            var item = JsonNode.Parse(line)!;
            if (item["error"] is JsonObject error) throw RemoteJobException.From(error, item["index"]?.GetValue<int>());
            yield return item["result"].Deserialize<T>(Json);
        }
    }

    private async Task<Guid> SubmitMapAsync(string function, IEnumerable<object?> items, bool star, int? chunksize, string? queue, CancellationToken ct)
    {
        var body = new JsonObject { ["function"] = function, ["items"] = JsonSerializer.SerializeToNode(items, Json), ["star"] = star };
        if (chunksize is { } size) body["chunksize"] = size;
        if (queue is not null) body["queue"] = queue;
        using var response = await Http.PostAsJsonAsync("/maps", body, ct);
        return (await ReadAsync(response, ct))["id"]!.GetValue<Guid>();
    }

    internal static async Task<JsonObject> ReadAsync(HttpResponseMessage response, CancellationToken ct, bool allowFailed = false)
    {
        if (!(allowFailed && (int)response.StatusCode == 424)) await EnsureAcceptedAsync(response, ct);
        return (JsonNode.Parse(await response.Content.ReadAsStringAsync(ct)) as JsonObject)!;
    }

    private static async Task EnsureAcceptedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var text = await response.Content.ReadAsStringAsync(ct);
        JsonObject? problem = null;
        try { problem = JsonNode.Parse(text) as JsonObject; } catch (JsonException) { }
        throw new JobsRequestException((int)response.StatusCode, problem?["title"]?.GetValue<string>() ?? response.ReasonPhrase ?? "",
            problem?["detail"]?.GetValue<string>() ?? text, problem);
    }

    public void Dispose()
    {
        if (_ownsHttp) Http.Dispose();
    }
}

/// <summary>Options of one submission (POST /jobs): all optional.</summary>
public sealed record JobOptions(string? Queue = null, double? TimeoutSeconds = null, int? Retries = null, double? DelaySeconds = null,
    string? IdempotencyKey = null)
{
    internal void WriteTo(JsonObject body)
    {
        if (Queue is not null) body["queue"] = Queue;
        if (TimeoutSeconds is { } timeout) body["timeoutSeconds"] = timeout;
        if (Retries is { } retries) body["retries"] = retries;
        if (DelaySeconds is { } delay) body["delaySeconds"] = delay;
    }
}

/// <summary>The service refused a request: its status and problem+json.</summary>
public sealed class JobsRequestException(int status, string title, string detail, JsonObject? problem)
    : Exception($"{status} {title}: {detail}")
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string Detail { get; } = detail;
    public JsonObject? Problem { get; } = problem;
}

/// <summary>The function raised in a worker: the remote exception's type, message and stack trace.</summary>
public sealed class RemoteJobException(string remoteType, string remoteMessage, string remoteStackTrace, int? index)
    : Exception($"{remoteType}: {remoteMessage}{(index is { } i ? $" (item {i})" : "")}")
{
    public string RemoteType { get; } = remoteType;
    public string RemoteMessage { get; } = remoteMessage;
    public string RemoteStackTrace { get; } = remoteStackTrace;
    /// <summary>For a map: the index of the failing item.</summary>
    public int? Index { get; } = index;

    public override string StackTrace => RemoteStackTrace;

    internal static RemoteJobException From(JsonObject error, int? index = null) => new(
        (error["type"] ?? error["exceptionType"])?.GetValue<string>() ?? "Exception",
        error["message"]?.GetValue<string>() ?? "",
        error["stackTrace"]?.GetValue<string>() ?? "",
        index);
}
