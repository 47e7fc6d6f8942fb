using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace Jobs.Core.Configuration;

/// <summary>Behaviour shared by the API and the workers (section "Jobs").</summary>
public sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>How long finished jobs and their results stay readable. Replaces Hangfire's 1-day expiry.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Upper bound for <c>?wait=</c> and <c>?timeout=</c>, so a client cannot pin a request forever.</summary>
    [Range(0, 3600)]
    public int MaxWaitSeconds { get; set; } = 60;

    /// <summary>
    /// Registers <c>debug.crash</c>, which kills its worker process. For fault tests only; never on by default.
    /// </summary>
    public bool EnableDebugCrash { get; set; }

    /// <summary>
    /// A job whose worker process died while running it this many times is not run again but failed with
    /// <c>WorkerCrashedException</c>: a job that kills its process must not take workers down forever.
    /// </summary>
    [Range(1, 100)]
    public int MaxWorkerCrashes { get; set; } = 3;

    /// <summary>Retries for a submission that gives none: 0, so a failing function fails its job, as in Pool.</summary>
    [Range(0, 100)]
    public int DefaultRetries { get; set; }

    /// <summary>Delay before the first retry; doubled for each further one, up to <see cref="RetryMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most items one map may have.</summary>
    [Range(1, 10_000_000)]
    public int MaxMapItems { get; set; } = 1_000_000;

    /// <summary>
    /// Most chunks of one map in the queue or running at once (its window); each chunk that ends hands its turn to
    /// the next, which queues behind whatever others submitted meanwhile. 0: as many as worker slots serve the map's
    /// queue when it is submitted (so a map alone still fills every slot, and a job from anyone else starts at the
    /// next free slot instead of after the map).
    /// </summary>
    [Range(0, 100_000)]
    public int MapWindow { get; set; }

    /// <summary>How long an Idempotency-Key keeps returning the job it created.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Most jobs one Hangfire job carries. Submissions that arrive while the previous ones are being stored are
    /// stored in one transaction and handed to Hangfire together (1 = every job its own Hangfire job).
    /// </summary>
    [Range(1, 1000)]
    public int MaxBatchSize { get; set; } = 100;

    /// <summary>
    /// The queues clients may submit to besides "default", those a live worker serves and this process's Worker:Queues: a
    /// job, map or schedule for any other queue is refused with 400, so a typo does not wait for ever and clients
    /// cannot make up queues (each would be a series in /metrics and a row in /pool and the dashboard). An entry
    /// ending in '*' declares every queue with that prefix ("reports-*"), which admits names without bound.
    /// </summary>
    public string[] Queues { get; set; } = [];

    /// <summary>
    /// Deepest nesting of arrays and objects in any JSON value the service stores: a job's or map item's arguments
    /// (the API refuses deeper ones with 400) and every result (the worker fails the job with MaybeEncodingError).
    /// <c>[[1]]</c> nests 2 deep. One limit for API and workers, so whatever is stored can be served. Formerly
    /// <c>Api:MaxJsonDepth</c>, which is still read when this key is not set (<see cref="ApplyFormerKeys"/>).
    /// </summary>
    [Range(4, 256)]
    public int MaxJsonDepth { get; set; } = 32;

    /// <summary>
    /// Largest result (its JSON text, in UTF-8 bytes) a job or map item may store: a larger one fails it with
    /// MaybeEncodingError naming this key, so one client's result cannot fill the database or the API's memory.
    /// </summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxResultBytes { get; set; } = 16L * 1024 * 1024;

    public const string MaxJsonDepthKey = Section + ":" + nameof(MaxJsonDepth);
    public const string MaxResultBytesKey = Section + ":" + nameof(MaxResultBytes);

    /// <summary>The key <see cref="MaxJsonDepth"/> had before it was shared by API and workers.</summary>
    public const string FormerMaxJsonDepthKey = "Api:MaxJsonDepth";

    /// <summary>Reads <see cref="FormerMaxJsonDepthKey"/> into <see cref="MaxJsonDepth"/> when only the former key is configured.</summary>
    public static void ApplyFormerKeys(JobsOptions options, IConfiguration configuration)
    {
        if (configuration[MaxJsonDepthKey] is null && configuration[FormerMaxJsonDepthKey] is { Length: > 0 } former && int.TryParse(former, out var depth))
            options.MaxJsonDepth = depth;
    }

    /// <summary><see cref="MaxJsonDepth"/> as configured, for what must know it before the service container exists.</summary>
    public static int ConfiguredMaxJsonDepth(IConfiguration configuration)
    {
        var options = configuration.Read<JobsOptions>(Section);
        ApplyFormerKeys(options, configuration);
        return JobsConfiguration.Validate(options, Section).MaxJsonDepth;
    }

    /// <summary>A row accepted but not handed to Hangfire after this long is dispatched by the workers' rescuer.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan DispatchGracePeriod { get; set; } = TimeSpan.FromSeconds(30);
}
