using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// How every store reads its rows: a command's rows mapped by one positional reader function per record
/// (the store's <c>Read</c>), so no store writes the reader loop itself.
/// </summary>
public static class Rows
{
    /// <summary>Every row of <paramref name="command"/>'s result, mapped by <paramref name="read"/>, in order.</summary>
    public static async Task<List<T>> ReadListAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken ct, int capacity = 0)
    {
        var list = new List<T>(capacity);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) list.Add(read(reader));
        return list;
    }

    /// <summary>The first row mapped by <paramref name="read"/>, or null when there is none.</summary>
    public static async Task<T?> ReadFirstOrDefaultAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken ct)
    {
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? read(reader) : default;
    }

    public static string? StringOrNull(this NpgsqlDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetString(ordinal);

    public static double? DoubleOrNull(this NpgsqlDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetDouble(ordinal);

    public static DateTime? DateTimeOrNull(this NpgsqlDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetDateTime(ordinal);
}
