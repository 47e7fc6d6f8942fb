using Microsoft.AspNetCore.Http.HttpResults;

namespace Jobs.Api.Problems;

/// <summary>The problem+json answers the endpoints share, worded so the caller knows what to fix.</summary>
public static class ApiProblems
{
    public static ValidationProblem Validation(string field, string message, string title = "The request is not valid") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: message, title: title);

    /// <summary>A refusal as problem+json: 400s as validation problems naming the field, others with their status.</summary>
    public static IResult From(RequestRefusedException e) => e.Status == StatusCodes.Status400BadRequest
        ? Validation(e.Field ?? "body", e.Message, e.Title)
        : TypedResults.Problem(e.Message, statusCode: e.Status, title: e.Title,
            extensions: e.Field is null ? null : new Dictionary<string, object?> { ["field"] = e.Field });

    public static ProblemHttpResult UnknownJob(Guid id) =>
        TypedResults.Problem($"There is no job {id}. It never existed or its retention period is over.",
            statusCode: StatusCodes.Status404NotFound, title: "Unknown job");
}

/// <summary>Why a request was refused, already worded for the caller; <see cref="Field"/> names what to fix.</summary>
public sealed class RequestRefusedException(int status, string title, string detail, string? field = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string? Field { get; } = field;
}
