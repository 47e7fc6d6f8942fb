using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Core.Functions;

/// <summary>
/// The error of a job whose result (or progress) JSON or PostgreSQL's <c>jsonb</c> cannot carry: NaN or Infinity,
/// the character U+0000, a lone UTF-16 surrogate, a number beyond PostgreSQL's numeric range. Named after
/// <c>multiprocessing.pool.MaybeEncodingError</c>, which Pool raises when a result cannot be sent back.
/// </summary>
public sealed class MaybeEncodingError(string message) : Exception(message), IErrorType
{
    public const string TypeName = "MaybeEncodingError";

    string IErrorType.ErrorType => TypeName;

    // PostgreSQL's numeric: up to 131072 digits before the decimal point and 16383 after.
    private const int MaxIntegerDigits = 131072;
    private const int MaxFractionDigits = 16383;

    /// <summary>The default options but for the depth: how deep a result may be is <see cref="StoredValueLimits"/>'s to say, not the serializer's 64.</summary>
    private static readonly JsonSerializerOptions AnyDepth = new() { MaxDepth = 1024 };

    /// <summary>The JSON text of <paramref name="value"/>, or a MaybeEncodingError saying why it cannot be stored.</summary>
    /// <param name="value">The value.</param>
    /// <param name="what">What it is, for the message ("result", "progress").</param>
    /// <param name="jsonb">Whether it goes to a jsonb column (progress), which cannot hold U+0000 or numbers beyond
    /// PostgreSQL's numeric; results are stored as json, as sent, which can.</param>
    public static string Encode(JsonNode? value, string what, bool jsonb = true)
    {
        string json;
        try
        {
            json = value?.ToJsonString(AnyDepth) ?? "null";
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // NaN or Infinity (ArgumentException); a string read from JSON that holds a lone surrogate escape (InvalidOperationException).
            throw new MaybeEncodingError($"Error sending {what}: {e.Message}");
        }
        Check(json, what, jsonb);
        return json;
    }

    /// <summary>Throws a MaybeEncodingError when <paramref name="json"/> is not something jobs.job can store.</summary>
    public static void Check(string json, string what, bool jsonb = true)
    {
        if (Problem(json, jsonb) is { } problem)
            throw new MaybeEncodingError($"Error sending {what} '{Excerpt(json)}': {problem}");
    }

    /// <summary>Why PostgreSQL's jsonb would refuse <paramref name="json"/>, or null when it would take it.</summary>
    public static string? Problem(string json, bool jsonb = true)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json), new JsonReaderOptions { MaxDepth = 1000 });
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.String or JsonTokenType.PropertyName when reader.ValueIsEscaped:
                        if (StringProblem(reader.GetString()!, jsonb) is { } text) return text;
                        break;
                    case JsonTokenType.Number when jsonb:
                        if (NumberProblem(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan) is { } number) return number;
                        break;
                }
            }
            return null;
        }
        catch (JsonException e)
        {
            return $"it is not valid JSON ({e.Message})";
        }
        catch (InvalidOperationException)
        {
            return "a string holds a lone UTF-16 surrogate, which is not Unicode text";
        }
    }

    /// <summary>Makes text safe to store inside a JSON string in jsonb (error messages, tracebacks): U+0000 and lone surrogates become U+FFFD.</summary>
    public static string Carryable(string text)
    {
        if (StringProblem(text) is null) return text;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (chars[i] == '\0') chars[i] = '\uFFFD';
            else if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    private static string? StringProblem(string s, bool jsonb = true)
    {
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '\0' && jsonb) return "a string holds the character U+0000, which PostgreSQL cannot store";
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(c)) return "a string holds a lone UTF-16 surrogate, which is not Unicode text";
        }
        return null;
    }

    private static string? NumberProblem(ReadOnlySpan<byte> number)
    {
        var e = number.IndexOfAny((byte)'e', (byte)'E');
        if (e < 0 && number.Length < 1000) return null;
        var mantissa = e < 0 ? number : number[..e];
        long exponent = 0;
        if (e >= 0 && !long.TryParse(Encoding.ASCII.GetString(number[(e + 1)..]), out exponent))
            return "a number's exponent is beyond PostgreSQL's numeric range";
        if (mantissa.Length > 0 && mantissa[0] == (byte)'-') mantissa = mantissa[1..];
        var point = mantissa.IndexOf((byte)'.');
        var integer = (point < 0 ? mantissa : mantissa[..point]).TrimStart((byte)'0').Length;
        var fraction = point < 0 ? 0 : mantissa[(point + 1)..].TrimEnd((byte)'0').Length;
        if (integer + exponent > MaxIntegerDigits) return "a number is beyond PostgreSQL's numeric range";
        if (fraction - exponent > MaxFractionDigits) return "a number has more fractional digits than PostgreSQL's numeric can hold";
        return null;
    }

    private static string Excerpt(string json) => json.Length <= 60 ? Carryable(json) : Carryable(json[..57]) + "…";
}
