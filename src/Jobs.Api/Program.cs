using Jobs.Api;
using Jobs.Api.Dashboard;
using Jobs.Api.Functions;
using Jobs.Api.Health;
using Jobs.Api.SingleJobs;
using Jobs.Api.Maps;
using Jobs.Api.Metrics;
using Jobs.Api.OpenApi;
using Jobs.Api.Pool;
using Jobs.Api.Problems;
using Jobs.Api.Queues;
using Jobs.Api.Schedules;
using Jobs.Api.Security;
using Jobs.Core;
using Jobs.Core.Configuration;
using Jobs.Core.Database;

// Its environment holds the connection string and key hashes: not for other processes of this user to read.
ProcessSecurity.HideFromSameUser();

if (await Commands.RunAsync(args) is { } exitCode) return exitCode;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = JobsConfiguration.ContentRoot });

builder.ConfigureApiHost();
builder.Services.AddJobsProblemDetails();
builder.Services.AddJobsSecurity();
builder.Services.AddJobsRateLimiting();
// Hangfire client only (this process never adds a Hangfire server); its commits wait for the disk (a 202 is durable).
builder.Services.AddJobsCore(builder.Configuration, CommitDurability.Durable);
builder.Services.AddSingleJobsApi();
builder.Services.AddMapsApi();
builder.Services.AddJobsSwagger();
builder.Services.AddJobsDashboard();
builder.Services.AddJobsHealthChecks();
builder.Services.AddJobsTelemetry(builder.Configuration);

var app = builder.Build();

app.UseJobsForwardedHeaders();
app.UseJobsProblemDetails();
app.UseJobsRequestChecks();
app.UseAuthentication();
app.UseRateLimiter(); // before authorization: requests refused for their key count too
app.UseAuthorization();
app.MapJobsSwagger();
app.MapJobsDashboard();
app.MapJobsHealthChecks();
app.MapJobsMetrics();
app.MapFunctionsApi();
app.MapSingleJobsApi();
app.MapMapsApi();
app.MapSchedulesApi();
app.MapPoolApi();
app.MapQueuesApi();

app.LogSecurityPosture();
app.Run();
return Environment.ExitCode; // non-zero when LogSecurityPosture stopped an unsafe start
