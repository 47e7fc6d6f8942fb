using Jobs.Core.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Jobs.Api;

public static class ApiHostExtensions
{
    /// <summary>Listening addresses and request limits from the "Api" section.</summary>
    public static WebApplicationBuilder AddJobsApiHost(this WebApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<ApiOptions>(ApiOptions.Section);
        var api = JobsConfiguration.Validate(
            builder.Configuration.GetSection(ApiOptions.Section).Get<ApiOptions>() ?? new ApiOptions(), ApiOptions.Section);
        builder.WebHost.UseUrls(api.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Services.Configure<KestrelServerOptions>(k => k.Limits.MaxRequestBodySize = api.MaxRequestBodyBytes);
        return builder;
    }
}
