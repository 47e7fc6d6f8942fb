using System.ComponentModel.DataAnnotations;

namespace Jobs.Launcher;

/// <summary>The one-command start (section "Launcher").</summary>
public sealed class LauncherOptions
{
    public const string Section = "Launcher";

    /// <summary>Separate worker processes to run.</summary>
    [Range(0, 64)]
    public int Workers { get; set; } = 2;

    /// <summary>The private PostgreSQL's data folder (relative to the repository), used when no connection string is set.</summary>
    [Required]
    public string DataDirectory { get; set; } = ".data/postgres";

    /// <summary>The private PostgreSQL's port; 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int PostgresPort { get; set; }
}
