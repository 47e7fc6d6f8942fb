using System.Text;
using Jobs.Api.SingleJobs;
using Jobs.Api.OpenApi;
using Jobs.Api.Problems;
using Jobs.Core.SingleJobs;
using Jobs.Api.Queues;
using Jobs.Api.Security;
using Jobs.Core.Configuration;
using Jobs.Core.Maps;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Maps;

/// <summary>/maps: map, starmap, imap, imap_unordered, and canceling them.</summary>
internal static class MapsApi
{
    /// <summary>The /maps endpoints' services; needs <c>AddJobsCore</c> (Program.cs).</summary>
    public static IServiceCollection AddMapsApi(this IServiceCollection services) => services.AddSingleton<MapService>();

    public static IEndpointRouteBuilder MapMapsApi(this IEndpointRouteBuilder app)
    {
        var limit = app.ServiceProvider.GetRequiredService<IOptions<ApiOptions>>().Value.MaxMapRequestBodyBytes;
        var maps = app.MapGroup("/maps").WithTags("Maps").RequireApiKey().WithRefusalsAsProblems();

        maps.MapPost("/", Submit)
            .WithName("SubmitMap")
            .WithSummary("Submit a map (map_async / starmap_async)")
            .WithDescription("Stores every item durably (in one transaction), then queues the first chunks (a window per map); quick chunks are " +
                             "carried on with in runs, so a chunk is at most one Hangfire job. items may be empty: the map is stored " +
                             "succeeded with no results, as Pool.map(f, []) is []. Each item is " +
                             "bound to the function's parameters first: a bad item is refused with 400 naming its index. With " +
                             "?wait=N, answers 200 when the map finishes within N seconds. Idempotency-Key, and the Warning header for " +
                             "a queue no live worker serves, as for POST /jobs.")
            .WithMetadata(new RequestSizeLimitAttribute(limit))
            .Accepts<SubmitMapRequest>("application/json")
            .WithRequestExample("""{ "function": "primes.count", "items": [10000, 20000, 30000], "star": false, "kwargs": {}, "chunksize": null, "queue": "default" }""")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        maps.MapGet("/{id:guid}", async Task<Results<Ok<MapView>, ProblemHttpResult, ValidationProblem>> (Guid id, [FromQuery] double? wait, MapService service, MapQueries store, CancellationToken ct) =>
            {
                if (wait is < 0 or double.NaN) return ApiProblems.Validation("wait", "wait is a number of seconds ≥ 0.");
                var map = wait is > 0 ? await service.WaitAsync(id, wait.Value, ct) : await store.GetAsync(id, ct);
                return map is null ? UnknownMap(id) : TypedResults.Ok(MapView.From(map));
            })
            .WithName("GetMap")
            .WithSummary("Get a map's progress (ready, successful, counts); with ?wait=N, wait for it")
            .ProducesProblem(StatusCodes.Status404NotFound);

        maps.MapGet("/{id:guid}/results", GetResults)
            .WithName("GetMapResults")
            .WithSummary("Get all results in input order (MapResult.get(timeout))")
            .WithDescription("200 {\"results\": [...]} in input order once every item succeeded; 424 with the first failing item's " +
                             "index and exception; 202 with the map and Retry-After if not finished within ?timeout=N.")
            .Produces<MapResults>(StatusCodes.Status200OK, "application/json")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status424FailedDependency);

        maps.MapGet("/{id:guid}/stream", Stream)
            .WithName("StreamMapResults")
            .WithSummary("Stream results as items finish (imap with order=input, imap_unordered with order=completion)")
            .WithDescription("application/x-ndjson, one line per item: {\"index\": i, \"result\": …} or {\"index\": i, \"error\": {…}}. " +
                             "The response ends when every item has finished.")
            .Produces<MapStreamItem>(StatusCodes.Status200OK, "application/x-ndjson")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);

        maps.MapDelete("/{id:guid}", async Task<Results<Ok<MapView>, ProblemHttpResult>> (Guid id, MapService service, CancellationToken ct) =>
                await service.CancelAsync(id, ct) is { } map ? TypedResults.Ok(MapView.From(map)) : UnknownMap(id))
            .WithName("CancelMap")
            .WithSummary("Cancel every item of a map not yet finished (Pool.terminate for one map)")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        return app;
    }

    private static async Task<Results<Ok<MapView>, Accepted<MapView>, ValidationProblem>> Submit([FromBody] SubmitMapRequest? request, [FromQuery] double? wait,
        [FromHeader(Name = IdempotencyKeys.Header)] string? idempotencyKey, MapService service, KnownQueues queues, HttpContext http, CancellationToken ct)
    {
        if (request is null) return ApiProblems.Validation("body", "Send a JSON object such as {\"function\": \"math.square\", \"items\": [1, 2, 3]}.");
        if (wait is < 0 or double.NaN) return ApiProblems.Validation("wait", "wait is a number of seconds ≥ 0.");
        var (map, created) = await service.SubmitAsync(request, idempotencyKey, IdempotencyKeys.Caller(http), ct);
        if (!created) http.Response.Headers["Idempotent-Replayed"] = "true";
        queues.WarnIfUnserved(map.Queue, http);
        try
        {
            if (wait is > 0 && await service.WaitAsync(map.Id, wait.Value, ct) is { } done && JobStates.IsFinished(done.State))
                return TypedResults.Ok(MapView.From(done));
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Stored, so accepted: the wait is given up, not the map.
        }
        return TypedResults.Accepted($"/maps/{map.Id}", MapView.From(map));
    }

    private static async Task<Results<PushStreamHttpResult, Accepted<MapView>, ProblemHttpResult, ValidationProblem>> GetResults(Guid id, [FromQuery] double? timeout, MapService service, MapQueries store, HttpContext http, CancellationToken ct)
    {
        if (timeout is < 0 or double.NaN) return ApiProblems.Validation("timeout", "timeout is a number of seconds ≥ 0.");
        var map = await service.WaitAsync(id, timeout ?? 0, ct);
        if (map is null) return UnknownMap(id);
        switch (map.State)
        {
            case "succeeded":
                return TypedResults.Stream(async body =>
                {
                    // 100,000 results are copied from the database as they come, never held in memory, nor one large one.
                    StreamedJobs.RequireReadingPace(http);
                    await body.WriteAsync("{\"ready\":true,\"results\":["u8.ToArray(), ct);
                    await store.CopyResultsAsync(id, body, ct);
                    await body.WriteAsync("]"u8.ToArray(), ct);
                    // Where results held Python tuples (only items with any): left out when none did.
                    if (await store.ResultTuplesAsync(id, ct) is { } tuples) await body.WriteAsync(Encoding.UTF8.GetBytes($",\"tuples\":{tuples}"), ct);
                    await body.WriteAsync("}"u8.ToArray(), ct);
                }, "application/json");
            case "failed" or "canceled":
                var failure = await store.FirstFailureAsync(id, ct);
                return ApiProblems.RemoteError(map.State == "failed" ? "An item of the map failed" : "The map was canceled", failure?.Error,
                    (type, message) => $"items[{failure?.Index}] of {map.Function}: {type}: {message}",
                    new Dictionary<string, object?> { ["mapId"] = id, ["index"] = failure?.Index });
            default:
                http.Response.Headers.RetryAfter = "1";
                return TypedResults.Accepted($"/maps/{id}", MapView.From(map));
        }
    }

    private static async Task<Results<PushStreamHttpResult, ProblemHttpResult, ValidationProblem>> Stream(Guid id, [FromQuery] string? order, MapService service, MapQueries store, HttpContext http, CancellationToken ct)
    {
        if (order is not (null or "input" or "completion"))
            return ApiProblems.Validation("order", "order is \"input\" (imap) or \"completion\" (imap_unordered).");
        var map = await store.GetAsync(id, ct);
        if (map is null) return UnknownMap(id);
        return TypedResults.Stream(body => service.StreamAsync(map, order != "completion", body, http.RequestAborted), "application/x-ndjson");
    }

    private static ProblemHttpResult UnknownMap(Guid id) =>
        TypedResults.Problem($"There is no map {id}. It never existed or its retention period is over.", statusCode: 404, title: "Unknown map");
}
