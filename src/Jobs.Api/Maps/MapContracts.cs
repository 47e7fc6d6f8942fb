using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Jobs.Core.SingleJobs;
using Jobs.Core.Maps;

namespace Jobs.Api.Maps;

/// <summary>POST /maps: <c>pool.map(function, items, chunksize)</c>, or with <c>star</c>, <c>pool.starmap</c>.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class SubmitMapRequest
{
    /// <summary>A registered function's name.</summary>
    [Required]
    public string? Function { get; set; }

    /// <summary>The items: each is the single positional argument (map), or with star an array of positional arguments (starmap).</summary>
    [Required]
    public JsonElement Items { get; set; }

    /// <summary>Unpack each item into positional arguments, like starmap.</summary>
    public bool Star { get; set; }

    /// <summary>Keyword arguments passed to every call.</summary>
    public JsonElement Kwargs { get; set; }

    /// <summary>Items per chunk (at most one Hangfire job each: quick chunks are carried in runs). Default, as in Python: ceil(items / (4 × worker slots)).</summary>
    public int? Chunksize { get; set; }

    /// <summary>Fail an item with Jobs.Core.Execution.JobTimeoutException after this many seconds of running; the rest go on. Default: the function's own.</summary>
    public double? TimeoutSeconds { get; set; }

    public string? Queue { get; set; }

    /// <summary>
    /// Where items and kwargs held Python tuples (the Python client sends it; other clients leave it out): JSON Pointers
    /// into <c>items</c> (each within an item: "/3/1") and into <c>kwargs</c>; a Python function receives those arrays as
    /// tuples, and the results' tuples come back with the results.
    /// </summary>
    public MapTupleLocations? Tuples { get; set; }
}

/// <summary>A map's progress: Python's MapResult, with counts.</summary>
internal sealed record MapView(Guid Id, string Function, string Queue, string State, int Total, int Succeeded, int Failed, int Canceled,
    int Pending, bool Ready, bool? Successful, int Chunks, int Chunksize, DateTime CreatedAt, DateTime? FinishedAt)
{
    public static MapView From(MapRecord m)
    {
        var ready = JobStates.IsFinished(m.State);
        return new MapView(m.Id, m.Function, m.Queue, m.State, m.Total, m.Succeeded, m.Failed, m.Canceled, m.Pending, ready,
            ready ? m.State == "succeeded" : null, m.Chunks, m.Chunksize, DateTime.SpecifyKind(m.CreatedAt, DateTimeKind.Utc),
            m.FinishedAt is { } f ? DateTime.SpecifyKind(f, DateTimeKind.Utc) : null);
    }
}

/// <summary>JSON Pointers (RFC 6901) of the arrays of a map's request that were Python tuples.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class MapTupleLocations
{
    /// <summary>Into items: "/i" (item i itself) or deeper.</summary>
    public List<string>? Items { get; set; }

    /// <summary>Into kwargs.</summary>
    public List<string>? Kwargs { get; set; }
}

/// <summary>
/// GET /maps/{id}/results when every item succeeded: <c>MapResult.get()</c>'s list, in input order; <c>ready</c> as in
/// <see cref="SingleJobs.JobResult"/> (written by <see cref="MapsApi"/>, which streams the list).
/// </summary>
internal sealed record MapResults(IReadOnlyList<RawJson?> Results)
{
    [JsonPropertyOrder(-1)]
    public bool Ready { get; init; } = true;

    /// <summary>Where results held Python tuples: item index → JSON Pointers into its result; left out when none did.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Tuples { get; init; }
}

/// <summary>One line of GET /maps/{id}/stream: an item's result, or what it raised (then <c>error</c> instead of <c>result</c>).</summary>
internal sealed record MapStreamItem(
    int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RawJson? Result,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RemoteException? Error,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Tuples = null);

/// <summary>What a job or a map item raised, as the worker stored it (a JobView's <c>error</c> holds the same); <c>args</c>:
/// what a Python exception was made with, when JSON could carry them (absent otherwise).</summary>
internal sealed record RemoteException(string Type, string? Message, string? StackTrace,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<object?>? Args = null);
