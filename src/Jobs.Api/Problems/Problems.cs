using Microsoft.AspNetCore.Http.HttpResults;

namespace Jobs.Api.Problems;

/// <summary>The problem+json answers the endpoints share, worded so the caller knows what to fix.</summary>
internal static class ApiProblems
{
    public static ValidationProblem Validation(string field, string message, string title = "The request is not valid") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: message, title: title);

    /// <summary>A refusal as problem+json: 400s as validation problems naming the field, others with their status.</summary>
    public static IResult From(RequestRefusedException e) => e.Status == StatusCodes.Status400BadRequest
        ? Validation(e.Field ?? "body", e.Message, e.Title)
        : TypedResults.Problem(e.Message, statusCode: e.Status, title: e.Title,
            extensions: e.Field is null ? null : new Dictionary<string, object?> { ["field"] = e.Field });

    /// <summary>
    /// 424: what a job or a map item raised (or why it was canceled), from its stored error JSON: <c>exceptionType</c>,
    /// <c>message</c>, <c>stackTrace</c> (and <c>args</c> when stored) beside <paramref name="extensions"/> (which job, which item).
    /// </summary>
    public static ProblemHttpResult RemoteError(string title, string? errorJson, Func<string?, string?, string> detail, Dictionary<string, object?> extensions)
    {
        using var error = System.Text.Json.JsonDocument.Parse(errorJson ?? "{}");
        string? Member(string name) => error.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                                       && error.RootElement.TryGetProperty(name, out var v) ? v.GetString() : null;
        extensions["exceptionType"] = Member("type");
        extensions["message"] = Member("message");
        extensions["stackTrace"] = Member("stackTrace");
        // A Python exception's args (ErrorJson), for a client that rebuilds it from its type and args.
        if (error.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && error.RootElement.TryGetProperty("args", out var args)
            && args.ValueKind == System.Text.Json.JsonValueKind.Array)
            extensions["args"] = args.Clone();
        return TypedResults.Problem(title: title, detail: detail(Member("type"), Member("message")),
            statusCode: StatusCodes.Status424FailedDependency, extensions: extensions);
    }

    public static ProblemHttpResult UnknownJob(Guid id) =>
        TypedResults.Problem($"There is no job {id}. It never existed or its retention period is over.",
            statusCode: StatusCodes.Status404NotFound, title: "Unknown job");
}

/// <summary>Why a request was refused, already worded for the caller; <see cref="Field"/> names what to fix.</summary>
internal sealed class RequestRefusedException(int status, string title, string detail, string? field = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string? Field { get; } = field;
}
