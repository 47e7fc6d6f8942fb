using Jobs.Core;
using Jobs.Core.Configuration;
using Jobs.Core.Database;
using Jobs.Worker.Hosting;
using Jobs.Core.Queue.Maintenance;

// User code (Python functions) runs beside this process: it must not read our environment or memory.
Jobs.Core.ProcessSecurity.HideFromSameUser();

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = JobsConfiguration.ContentRoot });

// Relaxed commits: everything a worker writes is about jobs already stored durably (see CommitDurability).
builder.Services.AddJobsCore(builder.Configuration, CommitDurability.Relaxed);
builder.Services.AddJobsWorker(builder.Configuration);
builder.Services.AddQueueMaintenance();

builder.Build().Run();
