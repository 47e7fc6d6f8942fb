using System.Runtime.InteropServices;

namespace Jobs.Core;

/// <summary>
/// What a process of this service does about the code it runs for clients (Python functions run in processes of the
/// worker's machine): who it is, and keeping its own memory and environment from other processes of its user.
/// </summary>
public static partial class ProcessSecurity
{
    private const int PrSetDumpable = 4;

    /// <summary>Whether this process runs as root (it can then start python3 as an unprivileged user).</summary>
    public static bool IsRoot => (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && geteuid() == 0;

    /// <summary>
    /// Linux: makes this process non-dumpable, so that other processes of the same user — user code run as that user —
    /// can neither read its <c>/proc/&lt;pid&gt;/environ</c> (the connection string, <c>Callbacks__Secret</c>, key hashes),
    /// <c>mem</c>, <c>fd</c> or <c>maps</c>, nor trace it; those files then belong to root. Elsewhere it does nothing.
    /// </summary>
    public static void HideFromSameUser()
    {
        if (OperatingSystem.IsLinux()) _ = prctl(PrSetDumpable, 0, 0, 0, 0);
    }

    /// <summary>
    /// Whether every user has <paramref name="access"/> (e.g. <see cref="UnixFileMode.OtherRead"/>) to the file at
    /// <paramref name="path"/> and can reach it: every folder on the way to it — and to the file a link points at — is
    /// searchable by others. What a process started as another user (Python:User) can open; true on Windows.
    /// </summary>
    public static bool OthersCanReach(string path, UnixFileMode access)
    {
        if (OperatingSystem.IsWindows()) return true;
        var target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        return (File.GetUnixFileMode(target) & access) == access && FoldersSearchable(path) && FoldersSearchable(target);

        static bool FoldersSearchable(string file)
        {
            for (var dir = new FileInfo(file).Directory; dir is not null; dir = dir.Parent)
                if ((dir.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
            return true;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
