using Microsoft.AspNetCore.Http.HttpResults;

namespace Jobs.Api.Problems;

/// <summary>The problem+json answers the endpoints share, worded so the caller knows what to fix.</summary>
public static class ApiProblems
{
    public static ValidationProblem Validation(string field, string message, string title = "The request is not valid") =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: message, title: title);

    public static ProblemHttpResult UnknownJob(Guid id) =>
        TypedResults.Problem($"There is no job {id}. It never existed or its retention period is over.",
            statusCode: StatusCodes.Status404NotFound, title: "Unknown job");
}
