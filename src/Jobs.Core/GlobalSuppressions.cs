using System.Diagnostics.CodeAnalysis;

// The executor's RunAsync take the call (e.g. "math.square(7)") as their first Hangfire job argument only so that the
// dashboard shows it ([JobDisplayName("{0}")]); the code never reads it, and the stored Hangfire jobs' arguments keep it.
[assembly: SuppressMessage("Style", "IDE0060:Remove unused parameter", Scope = "member", Justification = "Hangfire's display name ({0}), not read by the code",
    Target = "~M:Jobs.Core.Queue.Executor.RunAsync(System.String,System.Guid[],Hangfire.Server.PerformContext,System.Threading.CancellationToken)")]
[assembly: SuppressMessage("Style", "IDE0060:Remove unused parameter", Scope = "member", Justification = "Hangfire's display name ({0}), not read by the code",
    Target = "~M:Jobs.Core.Queue.Executor.RunAsync(System.String,System.Guid,System.Int32,Hangfire.Server.PerformContext,System.Threading.CancellationToken)")]
