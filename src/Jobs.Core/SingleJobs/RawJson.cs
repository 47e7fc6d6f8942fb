using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jobs.Core.SingleJobs;

/// <summary>
/// A stored JSON value (arguments, a result, an error) as the text it was stored as, written to responses as it is:
/// never parsed again, so no serializer limit (depth, size) can make a value that was stored unreadable, and no
/// parsed copy of a large result is made per request. Values are checked where they are written (the API for
/// arguments, the worker for results, <see cref="Functions.StoredValueLimits"/>), and PostgreSQL's json column
/// holds only valid JSON.
/// </summary>
[JsonConverter(typeof(RawJsonConverter))]
public readonly record struct RawJson(string Json)
{
    public override string ToString() => Json;

    public static RawJson? From(string? json) => json is null ? null : new RawJson(json);

    /// <summary>
    /// Stands for a value a response copies in from the database as it writes (a job's result): the control
    /// character U+0001, which valid JSON text never holds raw (PostgreSQL's json type and the serializer both
    /// escape it inside strings), so each occurrence in a serialized response marks exactly one such value.
    /// </summary>
    public static readonly RawJson Placeholder = new("\u0001");

    /// <summary>The byte <see cref="Placeholder"/> is written as.</summary>
    public const byte PlaceholderByte = 0x01;
}

/// <summary>Writes a <see cref="RawJson"/> raw, without validating it again (depth included); reads any JSON value as its text.</summary>
public sealed class RawJsonConverter : JsonConverter<RawJson>
{
    public override RawJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var value = JsonDocument.ParseValue(ref reader);
        return new RawJson(value.RootElement.GetRawText());
    }

    public override void Write(Utf8JsonWriter writer, RawJson value, JsonSerializerOptions options) =>
        writer.WriteRawValue(value.Json, skipInputValidation: true);
}
