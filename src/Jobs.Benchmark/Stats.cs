namespace Jobs.Benchmark;

public sealed record Percentiles(double P50, double P95, double P99, int Count)
{
    public static readonly Percentiles None = new(double.NaN, double.NaN, double.NaN, 0);

    public static Percentiles Of(IEnumerable<double> samples)
    {
        var sorted = samples.Order().ToArray();
        if (sorted.Length == 0) return new(double.NaN, double.NaN, double.NaN, 0);
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return new(At(0.50), At(0.95), At(0.99), sorted.Length);
    }

    public override string ToString() => Count == 0 ? "–" : $"{P50:F1} / {P95:F1} / {P99:F1}";
}

/// <summary>One scenario's result for one system.</summary>
public sealed record Figures(double JobsPerSecond, double SubmissionsPerSecond, Percentiles Pickup, Percentiles RoundTrip, SqlCost Sql)
{
    /// <summary>A scenario left out with --only.</summary>
    public static readonly Figures None = new(double.NaN, double.NaN, Percentiles.None, Percentiles.None, SqlCost.None);
}
