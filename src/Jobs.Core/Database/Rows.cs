using Npgsql;

namespace Jobs.Core.Database;

/// <summary>
/// How every store reads its rows: a command's rows mapped by one positional reader function per record
/// (the store's <c>Read</c>), so no store writes the reader loop itself.
/// </summary>
public static class Rows
{
    /// <summary>
    /// How many stored values this process copies to clients at once (<see cref="CopyTextAsync"/>). A copy holds a pooled
    /// connection for as long as its client takes to read, so slow readers can hold at most these (Npgsql's pool has
    /// 100), never every connection the API has; further copies wait for one to end.
    /// </summary>
    public const int MaxConcurrentCopies = 16;

    private static readonly SemaphoreSlim Copies = new(MaxConcurrentCopies);

    /// <summary>
    /// Copies the first column of every row of <paramref name="command"/> (text: JSON as stored) to
    /// <paramref name="output"/> in UTF-8 as PostgreSQL sends it, with sequential access, so no value is held whole;
    /// <paramref name="separator"/> between rows, <paramref name="ifNone"/> when there is no row. Returns the rows copied.
    /// </summary>
    public static async Task<int> CopyTextAsync(this NpgsqlCommand command, Stream output, CancellationToken ct, string separator = "", string? ifNone = null)
    {
        await Copies.WaitAsync(ct);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct);
            var rows = 0;
            for (; await reader.ReadAsync(ct); rows++)
            {
                if (rows > 0 && separator.Length > 0) await output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(separator), ct);
                await using var value = await reader.GetFieldValueAsync<Stream>(0, ct);
                await value.CopyToAsync(output, 64 * 1024, ct);
            }
            if (rows == 0 && ifNone is not null) await output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(ifNone), ct);
            return rows;
        }
        finally
        {
            Copies.Release();
        }
    }

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
}
