using Jobs.Core.Configuration;
using Jobs.Worker.Hosting;
using Jobs.Worker.Maintenance;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = JobsConfiguration.ContentRoot });

builder.Services.AddJobsWorker(builder.Configuration);
builder.Services.AddJobsMaintenance();

builder.Build().Run();
