using Cronos;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Hangfire;
using Hangfire.Common;
using Hangfire.Storage;
using Jobs.Api.OpenApi;
using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Api.Security;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Schedules;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Jobs.Api.Schedules;

/// <summary>POST /schedules: submit this function with these arguments every time the cron expression fires.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed class ScheduleRequest
{
    /// <summary>Unique name; posting the same name again replaces the schedule.</summary>
    [Required]
    public string? Name { get; set; }

    /// <summary>Cron expression, 5 fields (minute precision) or 6 (with seconds first).</summary>
    [Required]
    public string? Cron { get; set; }

    /// <summary>IANA time zone the cron expression is read in, e.g. "Europe/Berlin". Default "UTC".</summary>
    public string? TimeZone { get; set; }

    [Required]
    public string? Function { get; set; }
    public JsonElement Args { get; set; }
    public JsonElement Kwargs { get; set; }
    public string? Queue { get; set; }
}

internal sealed record ScheduleView(string Name, string Cron, string TimeZone, string Function, JsonElement Args, JsonElement Kwargs,
    string Queue, DateTime? NextRunAt, DateTime? LastRunAt, string? LastError, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>/schedules: recurring jobs (Hangfire's recurring jobs, each submitting a tracked job when it fires).</summary>
internal static partial class SchedulesApi
{
    public static IEndpointRouteBuilder MapSchedulesApi(this IEndpointRouteBuilder app)
    {
        var schedules = app.MapGroup("/schedules").WithTags("Schedules").RequireApiKey().WithRefusalsAsProblems();

        schedules.MapPost("/", Upsert)
            .WithName("PutSchedule")
            .WithSummary("Create or replace a recurring schedule")
            .WithDescription("Every time the cron expression fires in the given time zone, a job with this function and these " +
                             "arguments is submitted (visible in GET /jobs like any other).")
            .Accepts<ScheduleRequest>("application/json")
            .WithRequestExample("""{ "name": "nightly-primes", "cron": "0 3 * * *", "timeZone": "Europe/Berlin", "function": "primes.count", "args": [1000000] }""")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);

        schedules.MapGet("/", async (ScheduleStore store, JobStorage storage, CancellationToken ct) =>
                TypedResults.Ok(WithRuns(await store.ListAsync(ct), storage)))
            .WithName("ListSchedules")
            .WithSummary("List the schedules with their next and last run");

        schedules.MapDelete("/{name}", async Task<Results<NoContent, ProblemHttpResult>> (string name, ScheduleStore store, IRecurringJobManager recurring, CancellationToken ct) =>
                await store.DeleteAsync(name, s => Register(recurring, name, s), ct)
                    ? TypedResults.NoContent()
                    : TypedResults.Problem($"There is no schedule named '{name}'.", statusCode: 404, title: "Unknown schedule"))
            .WithName("DeleteSchedule")
            .WithSummary("Delete a schedule; jobs it already submitted are unaffected")
            .ProducesProblem(StatusCodes.Status404NotFound);

        return app;
    }

    private static async Task<Results<Ok<ScheduleView>, ValidationProblem>> Upsert([FromBody] ScheduleRequest? request, FunctionRegistry registry, KnownQueues queues, ScheduleStore store,
        IRecurringJobManager recurring, JobStorage storage, IOptions<JobsOptions> jobs, HttpContext http, CancellationToken ct)
    {
        if (request is null) return ApiProblems.Validation("body", "Send a JSON object with name, cron and function.");
        if (request.Name is null || !NamePattern().IsMatch(request.Name))
            return ApiProblems.Validation("name", "name is 1–100 letters, digits, '.', '_' or '-'.");
        if (string.IsNullOrWhiteSpace(request.Cron))
            return ApiProblems.Validation("cron", "cron is a cron expression such as \"*/5 * * * *\".");
        var timeZoneId = request.TimeZone ?? "UTC";
        try
        {
            TimeZoneInfo.FindSystemTimeZoneById(timeZoneId);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return ApiProblems.Validation("timeZone", $"'{SubmissionRules.Echo(timeZoneId)}' is not a known time zone; use an IANA name such as \"Europe/Berlin\" or \"UTC\".");
        }
        if (NeverFires(request.Cron, TimeZoneInfo.FindSystemTimeZoneById(timeZoneId)))
            return ApiProblems.Validation("cron", $"'{SubmissionRules.Echo(request.Cron)}' never fires (no such date, e.g. February 30): nothing would ever run.");
        var queue = SubmissionRules.Queue(queues, request.Queue);
        var function = await SubmissionRules.FunctionAsync(registry, request.Function, ct);
        SubmissionRules.Depth(request.Args, request.Kwargs, jobs.Value.MaxJsonDepth);
        try
        {
            function.Validate(request.Args, request.Kwargs);
        }
        catch (ArgumentBindingException e)
        {
            return ApiProblems.Validation(e.Parameter, e.Message, "Arguments do not fit the function");
        }

        var schedule = new ScheduleRecord(request.Name, request.Cron, timeZoneId, function.Name,
            request.Args.ValueKind == JsonValueKind.Array ? request.Args.GetRawText() : "[]",
            request.Kwargs.ValueKind == JsonValueKind.Object ? request.Kwargs.GetRawText() : "{}",
            queue, default, default);
        ScheduleRecord saved;
        try
        {
            // The row first, then the recurring job: a request either refuses leaves neither (see UpsertAsync).
            saved = await store.UpsertAsync(schedule, s => Register(recurring, schedule.Name, s), ct);
        }
        catch (ArgumentException e)
        {
            // Hangfire parses (and so validates) the cron expression when it stores the recurring job.
            return ApiProblems.Validation("cron", $"'{SubmissionRules.Echo(request.Cron)}' is not a valid cron expression: {e.Message}");
        }
        // Stored all the same (a worker may be starting); its jobs wait until a worker serves the queue.
        queues.WarnIfUnserved(saved.Queue, http);
        return TypedResults.Ok(WithRuns([saved], storage)[0]);
    }

    /// <summary>Makes Hangfire fire <paramref name="schedule"/>; null removes what fires schedule <paramref name="name"/>.</summary>
    private static void Register(IRecurringJobManager recurring, string name, ScheduleRecord? schedule)
    {
        if (schedule is null)
        {
            recurring.RemoveIfExists(name);
            return;
        }
        recurring.AddOrUpdate(name, Job.FromExpression<ScheduleRunner>(r => r.RunAsync(name, CancellationToken.None), schedule.Queue),
            schedule.Cron, new RecurringJobOptions { TimeZone = TimeZoneInfo.FindSystemTimeZoneById(schedule.TimeZone) });
    }

    /// <summary>
    /// Whether <paramref name="cron"/> parses but has no next occurrence ("0 0 30 2 *"): Hangfire stores such a
    /// schedule and never runs it. Parsed as Hangfire parses it (Cronos; six fields include seconds); an expression
    /// Cronos cannot parse is left for Hangfire to refuse with its own words.
    /// </summary>
    private static bool NeverFires(string cron, TimeZoneInfo zone)
    {
        try
        {
            var format = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard;
            return CronExpression.Parse(cron, format).GetNextOccurrence(DateTime.UtcNow, zone) is null;
        }
        catch (CronFormatException)
        {
            return false;
        }
    }

    private static List<ScheduleView> WithRuns(IReadOnlyList<ScheduleRecord> schedules, JobStorage storage)
    {
        using var connection = storage.GetConnection();
        var runs = connection.GetRecurringJobs(schedules.Select(s => s.Name)).ToDictionary(r => r.Id);
        return schedules.Select(s =>
        {
            runs.TryGetValue(s.Name, out var run);
            using var args = JsonDocument.Parse(s.Args);
            using var kwargs = JsonDocument.Parse(s.Kwargs);
            return new ScheduleView(s.Name, s.Cron, s.TimeZone, s.Function, args.RootElement.Clone(), kwargs.RootElement.Clone(), s.Queue,
                run?.NextExecution, run?.LastExecution, run?.Error, s.CreatedAt, s.UpdatedAt);
        }).ToList();
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,100}$")]
    private static partial Regex NamePattern();
}
