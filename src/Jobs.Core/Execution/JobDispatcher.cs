using System.Text;
using System.Text.Json;
using Hangfire;
using Hangfire.States;

namespace Jobs.Core.Execution;

/// <summary>Creates the Hangfire job that carries a row of jobs.job to a worker serving its queue.</summary>
public sealed class JobDispatcher(IBackgroundJobClient client)
{
    private const int MaxCallLength = 200;

    public string Dispatch(Guid jobId, string function, string argsJson, string kwargsJson, string queue)
    {
        var call = DescribeCall(function, argsJson, kwargsJson);
        return client.Create<JobRunner>(
            runner => runner.RunAsync(call, jobId, null, CancellationToken.None),
            new EnqueuedState(queue));
    }

    /// <summary>"math.pow(2, y=10)": how the dashboard lists the job. Display only; the row holds the real arguments.</summary>
    public static string DescribeCall(string function, string argsJson, string kwargsJson)
    {
        var text = new StringBuilder(function).Append('(');
        var first = true;
        using (var args = JsonDocument.Parse(argsJson))
            foreach (var arg in args.RootElement.EnumerateArray())
            {
                if (!first) text.Append(", ");
                text.Append(arg.GetRawText());
                first = false;
            }
        using (var kwargs = JsonDocument.Parse(kwargsJson))
            foreach (var kw in kwargs.RootElement.EnumerateObject())
            {
                if (!first) text.Append(", ");
                text.Append(kw.Name).Append('=').Append(kw.Value.GetRawText());
                first = false;
            }
        text.Append(')');
        return text.Length <= MaxCallLength ? text.ToString() : string.Concat(text.ToString(0, MaxCallLength - 4), "…)");
    }
}
