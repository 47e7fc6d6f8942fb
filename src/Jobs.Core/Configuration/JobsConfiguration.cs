using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Core.Configuration;

public static class JobsConfiguration
{
    /// <summary>The connection string's name: <c>ConnectionStrings:Jobs</c>, or <c>ConnectionStrings__Jobs</c> in the environment.</summary>
    public const string ConnectionStringName = "Jobs";

    /// <summary>
    /// Every process reads the one top-level appsettings.json, which the build copies beside each program,
    /// so the programs look for it in their own folder rather than in the working directory.
    /// </summary>
    public static string ContentRoot => AppContext.BaseDirectory;

    /// <summary>Binds <typeparamref name="T"/> to its section and fails at start, naming the bad key, when invalid.</summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, string section) where T : class =>
        services.AddOptions<T>().BindConfiguration(section).ValidateDataAnnotations().ValidateOnStart();

    public static string GetJobsConnectionString(this IConfiguration configuration) =>
        configuration.GetConnectionString(ConnectionStringName) is { Length: > 0 } cs
            ? cs
            : throw new OptionsValidationException(ConnectionStringName, typeof(string),
                ["ConnectionStrings:Jobs is not set. Set it in appsettings.json or as the environment variable " +
                 "ConnectionStrings__Jobs, or start everything with the launcher, which provides a private PostgreSQL."]);

    /// <summary>
    /// <typeparamref name="T"/> read from its section and validated as <see cref="AddValidatedOptions{T}"/> does, for the
    /// few settings needed before the container exists (where to listen, whether keys are required).
    /// </summary>
    public static T Read<T>(this IConfiguration configuration, string section) where T : class, new() =>
        Validate(configuration.GetSection(section).Get<T>() ?? new T(), section);

    /// <summary>Validates an options object outside DI (the launcher, the benchmark), with the same rules.</summary>
    public static T Validate<T>(T options, string section) where T : class
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
            throw new OptionsValidationException(section, typeof(T),
                results.Select(r => $"{section}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
        return options;
    }
}
