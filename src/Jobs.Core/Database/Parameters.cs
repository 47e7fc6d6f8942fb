using Npgsql;
using NpgsqlTypes;

namespace Jobs.Core.Database;

/// <summary>Statement parameters whose value may be null, typed so PostgreSQL need not guess.</summary>
public static class Parameters
{
    /// <summary>A <c>uuid</c> parameter; null is SQL NULL.</summary>
    public static NpgsqlParameter Uuid(Guid? value) => new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid };
}
