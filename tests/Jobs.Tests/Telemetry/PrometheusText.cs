using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Jobs.Tests.Telemetry;

/// <summary>
/// A strict reader of Prometheus' text exposition format (0.0.4): every line a comment (HELP, TYPE), blank or a
/// sample; every sample of a family whose TYPE came first; label values quoted with only \\, \" and \n escaped; no
/// series twice; a histogram's buckets ascending, cumulative, ending at +Inf, which equals its _count. Anything else
/// throws <see cref="FormatException"/> naming the line.
/// </summary>
public sealed partial class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
    {
        public bool Has(params (string Name, string Value)[] labels) => labels.All(l => Labels.TryGetValue(l.Name, out var v) && v == l.Value);
    }

    /// <summary>Family name → type (counter, gauge, histogram, summary, untyped).</summary>
    public IReadOnlyDictionary<string, string> Types => _types;

    private readonly Dictionary<string, string> _types = new(StringComparer.Ordinal);
    private readonly List<Sample> _samples = [];

    public static PrometheusText Parse(string text)
    {
        var parsed = new PrometheusText();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            var line = lines[n];
            if (line.Length == 0) continue;
            try
            {
                if (line.StartsWith('#'))
                {
                    var comment = Comment().Match(line);
                    if (!comment.Success) continue; // a plain comment
                    var (kind, name, rest) = (comment.Groups[1].Value, comment.Groups[2].Value, comment.Groups[3].Value);
                    if (kind == "TYPE")
                    {
                        if (rest is not ("counter" or "gauge" or "histogram" or "summary" or "untyped")) throw new FormatException($"unknown type '{rest}'");
                        if (!parsed._types.TryAdd(name, rest)) throw new FormatException($"a second TYPE for {name}");
                        if (parsed._samples.Any(s => FamilyOf(s.Name, parsed._types) == name)) throw new FormatException($"TYPE of {name} after its samples");
                    }
                    continue;
                }
                var sample = ParseSample(line);
                if (FamilyOf(sample.Name, parsed._types) is null) throw new FormatException($"sample {sample.Name} of no declared family");
                var key = sample.Name + "{" + string.Join(',', sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
                if (!seen.Add(key)) throw new FormatException($"series {key} twice");
                parsed._samples.Add(sample);
            }
            catch (FormatException e)
            {
                throw new FormatException($"line {n + 1}: {e.Message}: {line}", e);
            }
        }
        parsed.CheckHistograms();
        return parsed;
    }

    /// <summary>The samples of <paramref name="name"/> whose labels include <paramref name="labels"/>.</summary>
    public IEnumerable<Sample> Find(string name, params (string Name, string Value)[] labels) =>
        _samples.Where(s => s.Name == name && s.Has(labels));

    /// <summary>The one sample of <paramref name="name"/> with <paramref name="labels"/> (fails when none or several).</summary>
    public double Value(string name, params (string Name, string Value)[] labels)
    {
        var found = Find(name, labels).ToList();
        Assert.True(found.Count == 1, $"expected one {name} with {string.Join(',', labels)}, found {found.Count}");
        return found[0].Value;
    }

    /// <summary>A histogram's bucket boundaries (without +Inf) for the series with <paramref name="labels"/>.</summary>
    public IReadOnlyList<double> Buckets(string histogram, params (string Name, string Value)[] labels) =>
        [.. Find(histogram + "_bucket", labels).Select(s => Le(s)).Where(le => !double.IsPositiveInfinity(le)).Distinct().Order()];

    /// <summary>How many observations of the series with <paramref name="labels"/> are ≤ <paramref name="le"/>.</summary>
    public double CountAtMost(string histogram, double le, params (string Name, string Value)[] labels) =>
        Find(histogram + "_bucket", labels).Where(s => Le(s) == le).Sum(s => s.Value);

    private static double Le(Sample s) => ParseValue(s.Labels["le"]);

    private static string? FamilyOf(string sample, IReadOnlyDictionary<string, string> types)
    {
        if (types.ContainsKey(sample)) return sample;
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(sample[..^suffix.Length], out var type) && type is "histogram" or "summary"
                && (suffix != "_bucket" || type == "histogram"))
                return sample[..^suffix.Length];
        return null;
    }

    private void CheckHistograms()
    {
        foreach (var (family, _) in _types.Where(t => t.Value == "histogram"))
        {
            var series = _samples.Where(s => s.Name == family + "_bucket")
                .GroupBy(s => string.Join(',', s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")));
            foreach (var buckets in series)
            {
                var list = buckets.ToList();
                for (var i = 1; i < list.Count; i++)
                {
                    if (!(Le(list[i]) > Le(list[i - 1]))) throw new FormatException($"{family}{{{buckets.Key}}}: le {list[i].Labels["le"]} after {list[i - 1].Labels["le"]}");
                    if (list[i].Value < list[i - 1].Value) throw new FormatException($"{family}{{{buckets.Key}}}: buckets not cumulative at le {list[i].Labels["le"]}");
                }
                if (!double.IsPositiveInfinity(Le(list[^1]))) throw new FormatException($"{family}{{{buckets.Key}}}: no +Inf bucket");
                var count = _samples.Single(s => s.Name == family + "_count" && Key(s) == buckets.Key);
                if (count.Value != list[^1].Value) throw new FormatException($"{family}{{{buckets.Key}}}: +Inf {list[^1].Value} ≠ _count {count.Value}");
            }
        }

        static string Key(Sample s) => string.Join(',', s.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
    }

    private static Sample ParseSample(string line)
    {
        var i = 0;
        var name = Name(line, ref i, metric: true);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var label = Name(line, ref i, metric: false);
                if (line[i++] != '=' || line[i++] != '"') throw new FormatException($"label {label} without =\"");
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        value.Append(line[i + 1] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            var c => throw new FormatException($"escape \\{c}"),
                        });
                        i += 2;
                    }
                    else value.Append(line[i++]);
                }
                i++;
                if (!labels.TryAdd(label, value.ToString())) throw new FormatException($"label {label} twice");
                if (line[i] == ',') i++;
                else if (line[i] != '}') throw new FormatException("labels not separated by ,");
            }
            i++;
        }
        if (i >= line.Length || line[i] != ' ') throw new FormatException("no space before the value");
        var fields = line[(i + 1)..].Split(' ');
        if (fields.Length is < 1 or > 2) throw new FormatException("not 'value [timestamp]'");
        if (fields.Length == 2 && !long.TryParse(fields[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            throw new FormatException($"timestamp {fields[1]}");
        return new Sample(name, labels, ParseValue(fields[0]));
    }

    private static string Name(string line, ref int i, bool metric)
    {
        var m = (metric ? MetricName() : LabelName()).Match(line, i);
        if (!m.Success || m.Index != i) throw new FormatException($"no {(metric ? "metric" : "label")} name at {i}");
        i += m.Length;
        return m.Value;
    }

    private static double ParseValue(string text) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) => v,
        _ => throw new FormatException($"value {text}"),
    };

    [GeneratedRegex(@"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$")]
    private static partial Regex Comment();

    [GeneratedRegex(@"[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"[a-zA-Z_][a-zA-Z0-9_]*")]
    private static partial Regex LabelName();
}
