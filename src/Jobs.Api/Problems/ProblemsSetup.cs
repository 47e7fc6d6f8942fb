using Jobs.Core.Functions;
using System.Text.Json;
using Jobs.Core.Database;
using Microsoft.AspNetCore.Diagnostics;
using Npgsql;

namespace Jobs.Api.Problems;

/// <summary>Every error, including the framework's own (bad JSON, body too large, unknown route), as RFC 9457 problem+json.</summary>
internal static class ProblemsSetup
{
    public static IServiceCollection AddJobsProblemDetails(this IServiceCollection services)
    {
        services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            var problem = context.ProblemDetails;
            // ASP.NET Core fills "type" only for the status codes it knows; 424 and 503 need one too.
            problem.Type ??= problem.Status switch
            {
                StatusCodes.Status424FailedDependency => "https://www.rfc-editor.org/rfc/rfc4918#section-11.4",
                StatusCodes.Status503ServiceUnavailable => "https://tools.ietf.org/html/rfc9110#section-15.6.4",
                _ => "about:blank",
            };
            // Minimal APIs answer an oversized body with a bare 413 (the exception never reaches the handler
            // below), so the explanation is added here.
            if (problem.Status == StatusCodes.Status413PayloadTooLarge) problem.Detail ??= TooLarge;
        });
        services.AddExceptionHandler<ExceptionToProblem>();
        // Without this, minimal APIs answer unreadable bodies with a bare 400 and no explanation.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return services;
    }

    private const string TooLarge = "The request body is larger than this service accepts (Api:MaxRequestBodyBytes). Send fewer or smaller arguments.";

    public static WebApplication UseJobsProblemDetails(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    private sealed class ExceptionToProblem(IProblemDetailsService problems, ILogger<ExceptionToProblem> logger) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
        {
            var (status, title, detail) = Classify(exception, http.Request);
            // After a PostgreSQL restart every idle pooled connection is dead, and each would fail one more request:
            // the first failure closes them all, so the next request opens a fresh one.
            if (status == 503)
            {
                http.RequestServices.GetService<NpgsqlDataSource>()?.Clear();
                logger.LogWarning("Request {Method} {Path} refused: PostgreSQL is unavailable ({Message})", http.Request.Method, http.Request.Path, exception.Message);
                http.Response.Headers.RetryAfter = "5";
            }
            else if (status >= 500) logger.LogError(exception, "Request {Method} {Path} failed", http.Request.Method, http.Request.Path);
            http.Response.StatusCode = status;
            var problem = new ProblemDetailsContext { HttpContext = http, Exception = exception, ProblemDetails = { Status = status, Title = title, Detail = detail } };
            if (exception is SubmissionOutcomeUnknownException { Ids: [var id, ..] } outcome) problem.ProblemDetails.Extensions[outcome.Kind + "Id"] = id;
            // Malformed JSON names where: "$.args[0]" becomes the field "args[0]", as validation problems name it.
            if (exception is BadHttpRequestException { InnerException: JsonException { Path: { } path } })
                problem.ProblemDetails.Extensions["errors"] = new Dictionary<string, string[]> { [Field(path)] = [detail] };
            return await problems.TryWriteAsync(problem);
        }

        internal static string Field(string jsonPath) => jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath;

        /// <summary>System.Text.Json's words ("could not be converted to System.Nullable`1[System.Double]") in the contract's.</summary>
        internal static string Explain(JsonException json, string field)
        {
            // "Cannot transcode invalid UTF-8 …", "Cannot read invalid UTF-16 … surrogate"; not "Cannot get the value of a token type 'Number' as a string".
            if (json.InnerException is InvalidOperationException { Message: var inner }
                && (inner.Contains("UTF-8", StringComparison.Ordinal) || inner.Contains("UTF-16", StringComparison.Ordinal) || inner.Contains("surrogate", StringComparison.OrdinalIgnoreCase)))
                return global::Jobs.Core.Functions.JsonUtf8.Explain(field);
            var wanted = json.Message switch
            {
                var m when m.Contains("System.Double", StringComparison.Ordinal) || m.Contains("System.Int", StringComparison.Ordinal) => "a JSON number",
                var m when m.Contains("System.String", StringComparison.Ordinal) => "a JSON string",
                var m when m.Contains("System.Boolean", StringComparison.Ordinal) => "true or false",
                var m when m.Contains("System.DateTimeOffset", StringComparison.Ordinal) => "an ISO 8601 date and time as a JSON string",
                _ => null,
            };
            return wanted is null
                ? $"The request body is not valid JSON for this endpoint at {field}: {json.Message}"
                : $"{field} must be {wanted}.";
        }

        internal static bool IsSubmission(HttpRequest request) =>
            HttpMethods.IsPost(request.Method) && (request.Path.StartsWithSegments("/jobs") || request.Path.StartsWithSegments("/maps"));
    }


    /// <summary>The status, title and detail an exception answers with (per item, in POST /jobs/batch).</summary>
    public static (int Status, string Title, string Detail) Classify(Exception exception, HttpRequest request) =>
        exception switch
        {
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                (413, "Request body too large", TooLarge),
            BadHttpRequestException { InnerException: JsonException deep } when deep.Message.Contains("maximum configured depth", StringComparison.Ordinal) =>
                (400, "Nested too deeply", $"The request body nests arrays or objects deeper than this service accepts (Jobs:MaxJsonDepth, plus {ApiHostExtensions.BodyDepthAroundValues} for the request around the values): {deep.Message}"),
            BadHttpRequestException { InnerException: JsonException { Path: { } where } json } =>
                (400, "Malformed JSON", ExceptionToProblem.Explain(json, ExceptionToProblem.Field(where))),
            BadHttpRequestException { InnerException: JsonException json } =>
                (400, "Malformed JSON", $"The request body is not valid JSON for this endpoint: {json.Message}"),
            BadHttpRequestException bad =>
                (bad.StatusCode, "Bad request", bad.Message),
            // e.g. "\u0000" in a string: PostgreSQL cannot store it. The statement failed whole: nothing was stored.
            PostgresException { SqlState: ['2', '2', ..] } data =>
                (400, "Data PostgreSQL cannot store", $"The request contains a value PostgreSQL refuses ({data.MessageText}); nothing was stored."),
            SubmissionOutcomeUnknownException unknown =>
                (503, "Database unavailable: outcome unknown",
                    $"PostgreSQL went away while this {unknown.Kind} was being committed, so it may have been stored as {unknown.Kind} {unknown.Ids[0]} " +
                    $"(GET /{unknown.Kind}s/{unknown.Ids[0]} tells: 404 means it was not). " +
                    (request.Headers.ContainsKey("Idempotency-Key")
                        ? "Retry after a few seconds with the same Idempotency-Key: a retry with the key never makes a second one."
                        : "Look before you retry: without an Idempotency-Key a retry makes a new one.")),
            FunctionOffersUnavailableException offers =>
                (503, "Functions unavailable", $"The functions workers offer cannot be read from PostgreSQL right now, so whether '{SubmissionRules.Echo(offers.Name)}' " +
                    $"exists cannot be told{(ExceptionToProblem.IsSubmission(request) ? "; nothing was stored" : "")}. Retry after a few seconds."),
            _ when IsDatabaseUnavailable(exception) =>
                (503, "Database unavailable", ExceptionToProblem.IsSubmission(request)
                    ? "PostgreSQL cannot be reached right now; nothing was stored. Retry after a few seconds."
                    : "PostgreSQL cannot be reached right now. Retry after a few seconds."),
            _ => (500, "Internal error", "The service failed unexpectedly; the error is logged."),
        };

    /// <summary>PostgreSQL could not be reached (or went away): the API answers 503.</summary>
    public static bool IsDatabaseUnavailable(Exception e) => DatabaseRetry.IsUnavailable(e) || e is NpgsqlException and not PostgresException;
}
