namespace Jobs.Core.Functions.BuiltIn;

public static class MathFunctions
{
    [JobFunction("math.square", Description = "x squared.")]
    public static double Square(double x) => x * x;

    [JobFunction("math.pow", Description = "x raised to the power y.")]
    public static double Pow(double x, double y) => Math.Pow(x, y);

    /// <summary>Stops at a timeout or cancel (checked every 65,536 numbers and every million marks), so its sieve is freed with the job.</summary>
    [JobFunction("primes.count", Description = "How many primes are ≤ limit (a sieve; CPU-bound).")]
    public static int CountPrimes(int limit, CancellationToken ct)
    {
        if (limit < 2) return 0;
        if (limit > 500_000_000) throw new ArgumentOutOfRangeException(nameof(limit), limit, "limit must be at most 500,000,000.");
        var composite = new bool[limit + 1];
        var count = 0;
        var marks = 0L;
        for (var n = 2; n <= limit; n++)
        {
            if ((n & 0xFFFF) == 0) ct.ThrowIfCancellationRequested();
            if (composite[n]) continue;
            count++;
            for (var m = (long)n * n; m <= limit; m += n)
            {
                composite[m] = true;
                if ((++marks & 0xFFFFF) == 0) ct.ThrowIfCancellationRequested();
            }
        }
        return count;
    }
}
