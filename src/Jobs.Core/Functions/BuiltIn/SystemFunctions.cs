using System.Security.Cryptography;
using System.Text;

namespace Jobs.Core.Functions.BuiltIn;

public static class SystemFunctions
{
    [JobFunction("noop", Description = "Does nothing; for measuring the queue itself.")]
    public static void Noop() { }

    [JobFunction("cpu.spin", Description = "Burns the given number of milliseconds of CPU time (this thread's, so parallel spins on a busy machine take longer, as real work does).")]
    public static int Spin(int milliseconds, CancellationToken ct)
    {
        if (milliseconds < 0) throw new ArgumentOutOfRangeException(nameof(milliseconds), milliseconds, "milliseconds must be ≥ 0.");
        var start = ThreadCpu.Now();
        long iterations = 0;
        while ((ThreadCpu.Now() - start).TotalMilliseconds < milliseconds)
        {
            // Check the token now and then, not every turn: the point is to burn CPU, not to read it.
            if ((++iterations & 0xFF) == 0) ct.ThrowIfCancellationRequested();
        }
        return milliseconds;
    }

    [JobFunction("time.sleep", Description = "Sleeps for the given number of seconds; cancellable.")]
    public static async Task<double> Sleep(double seconds, CancellationToken ct)
    {
        if (double.IsNaN(seconds) || seconds < 0 || seconds > 86_400)
            throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "seconds must be between 0 and 86400.");
        await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
        return seconds;
    }

    [JobFunction("text.sha256", Description = "Hex SHA-256 of the UTF-8 text, hashed `rounds` times.")]
    public static string Sha256(string text, int rounds = 1)
    {
        if (rounds is < 1 or > 10_000_000) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "rounds must be between 1 and 10,000,000.");
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        for (var i = 1; i < rounds; i++) hash = SHA256.HashData(hash);
        return Convert.ToHexStringLower(hash);
    }

    [JobFunction("progress.demo", Description = "Takes `steps` steps of `delayMs` each, reporting progress after each.", TimeoutSeconds = 600)]
    public static async Task<int> ProgressDemo(int steps, int delayMs, JobContext context, CancellationToken ct)
    {
        if (steps is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be between 1 and 10,000.");
        if (delayMs is < 0 or > 60_000) throw new ArgumentOutOfRangeException(nameof(delayMs), delayMs, "delayMs must be between 0 and 60,000.");
        for (var step = 1; step <= steps; step++)
        {
            await Task.Delay(delayMs, ct);
            await context.ReportProgressAsync((double)step / steps, $"step {step} of {steps}", ct);
        }
        return steps;
    }
}
