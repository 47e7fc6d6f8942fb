using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// One Information line per outcome of a job's run, in the category <see cref="Category"/> (so
/// <c>Logging:LogLevel:Jobs.Core.SingleJobs.Outcomes=Warning</c> silences these alone, <c>…:Jobs.Core.SingleJobs=Warning</c> the
/// runner's other lines too). Every value is a field of the line (JSON console: a property of <c>State</c>):
/// <c>JobId</c>, <c>Outcome</c> (succeeded, failed, timed out, retried, canceled, released), <c>Function</c>, <c>Queue</c>,
/// <c>Attempt</c>, <c>DurationMs</c>, <c>TraceId</c>, <c>SpanId</c>, and for a failure <c>ExceptionType</c> and
/// <c>ExceptionMessage</c> (a retry also <c>RetryAt</c>, ISO 8601 UTC). Source-generated: nothing is formatted when the level is off.
/// </summary>
public static partial class JobOutcomeLog
{
    public const string Category = "Jobs.Core.SingleJobs.Outcomes";

    [LoggerMessage(EventId = 1, EventName = "JobEnded", Level = LogLevel.Information,
        Message = "Job {JobId} {Outcome} in {DurationMs} ms: {Function} on queue {Queue}, attempt {Attempt} (trace {TraceId}, span {SpanId})")]
    public static partial void Ended(ILogger logger, Guid jobId, string outcome, double durationMs, string function, string queue, int attempt,
        string? traceId, string? spanId);

    [LoggerMessage(EventId = 2, EventName = "JobFailed", Level = LogLevel.Information,
        Message = "Job {JobId} {Outcome} after {DurationMs} ms: {Function} on queue {Queue}, attempt {Attempt}, raised {ExceptionType}: {ExceptionMessage} (trace {TraceId}, span {SpanId})")]
    public static partial void Failed(ILogger logger, Guid jobId, string outcome, double durationMs, string function, string queue, int attempt,
        string exceptionType, string exceptionMessage, string? traceId, string? spanId);

    [LoggerMessage(EventId = 3, EventName = "JobRetried", Level = LogLevel.Information,
        Message = "Job {JobId} {Outcome} after {DurationMs} ms: {Function} on queue {Queue}, attempt {Attempt}, raised {ExceptionType}: {ExceptionMessage}; next attempt at {RetryAt} (trace {TraceId}, span {SpanId})")]
    public static partial void Retried(ILogger logger, Guid jobId, string outcome, double durationMs, string function, string queue, int attempt,
        string exceptionType, string exceptionMessage, string retryAt, string? traceId, string? spanId);

    [LoggerMessage(EventId = 4, EventName = "MapChunkEnded", Level = LogLevel.Information,
        Message = "Map {MapId} chunk {Chunk} {Outcome} in {DurationMs} ms: {Function} on queue {Queue}, {Succeeded} items succeeded, {Failed} failed, first failure {ExceptionType}: {ExceptionMessage}")]
    public static partial void ChunkEnded(ILogger logger, Guid mapId, int chunk, string outcome, double durationMs, string function, string queue,
        int succeeded, int failed, string? exceptionType, string? exceptionMessage);

    public const string MapCategory = "Jobs.Core.Maps.Outcomes";

    /// <summary>At most this many characters of an exception's message go into a line.</summary>
    public const int MaxMessageLength = 1000;

    /// <summary>
    /// An exception's message as one line: a function's message is its caller's text, and a line break in it would start a
    /// line of its own in the text log, looking like any other (one client forging another's outcome). Control characters
    /// are escaped (<c>\n</c>, <c>\u001b</c>), and a long message is cut at <see cref="MaxMessageLength"/> with "…".
    /// </summary>
    public static string OneLine(string message)
    {
        var cut = message.Length > MaxMessageLength;
        var text = !cut ? message : message[..(char.IsHighSurrogate(message[MaxMessageLength - 1]) ? MaxMessageLength - 1 : MaxMessageLength)];
        if (!text.Any(char.IsControl)) return cut ? text + "…" : text;
        var line = new System.Text.StringBuilder(text.Length + 16);
        foreach (var c in text)
            line.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return cut ? line.Append('…').ToString() : line.ToString();
    }

    /// <summary>Milliseconds to a tenth: enough for a log line, and a short number in it.</summary>
    public static double Milliseconds(TimeSpan elapsed) => Math.Round(elapsed.TotalMilliseconds, 1);

    /// <summary>
    /// The run span's ids when traces are recorded; otherwise the submitting request's (its stored traceparent), so the
    /// line still joins the trace. Null when the job came with neither.
    /// </summary>
    public static (string? TraceId, string? SpanId) TraceOf(Activity? run, ActivityContext submitter) =>
        run is not null ? (run.TraceId.ToHexString(), run.SpanId.ToHexString())
        : submitter.TraceId != default ? (submitter.TraceId.ToHexString(), submitter.SpanId.ToHexString())
        : (null, null);
}

/// <summary>
/// The scope around a job's run: its fields (<c>JobId</c>, <c>Function</c>, <c>Queue</c>, <c>TraceId</c>) render as fields —
/// properties of a JSON line's scope, <c>JobId:… Function:…</c> in text — where a dictionary rendered as its type name.
/// </summary>
public sealed class JobLogScope(Guid jobId, string function, string queue, string? traceId) : IReadOnlyList<KeyValuePair<string, object?>>
{
    public int Count => 4;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("JobId", jobId),
        1 => new("Function", function),
        2 => new("Queue", queue),
        3 => new("TraceId", traceId),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < Count; i++) yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"JobId:{jobId} Function:{function} Queue:{queue} TraceId:{traceId}";
}
