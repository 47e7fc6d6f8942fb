using System.Diagnostics;

namespace Jobs.Tests.Infrastructure;

/// <summary>
/// What Python user code needs when the tests run as root, as here and in CI: the workers then run python3 as
/// <c>nobody</c> (Python:User), which can read neither a pyenv interpreter under /root nor a private temp folder.
/// </summary>
public static class UserCode
{
    private const UnixFileMode Others = UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// The interpreter the test workers run: python3's own (not a pyenv shim) when every user can run it, else
    /// Debian's /usr/bin/python3 (which .ci/run installs).
    /// </summary>
    public static string Interpreter { get; } = Find();

    private static string Find()
    {
        var info = new ProcessStartInfo("python3", ["-c", "import sys; print(sys.executable)"]) { RedirectStandardOutput = true };
        using var python = Process.Start(info)!;
        var path = python.StandardOutput.ReadToEnd().Trim();
        python.WaitForExit();
        foreach (var candidate in (string[])[path, "/usr/bin/python3"])
            if (File.Exists(candidate) && EveryoneCanRun(candidate)) return candidate;
        return path;
    }

    private static bool EveryoneCanRun(string path)
    {
        if (OperatingSystem.IsWindows()) return true;
        var file = new FileInfo(path);
        var target = file.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? file.FullName;
        if ((File.GetUnixFileMode(target) & UnixFileMode.OtherExecute) == 0) return false;
        for (var dir = new FileInfo(target).Directory; dir is not null; dir = dir.Parent)
            if ((dir.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
        return true;
    }

    /// <summary>A new temp folder the user python3 runs as can read and write (CreateTempSubdirectory's is private).</summary>
    public static DirectoryInfo TempFolder(string prefix)
    {
        var folder = Directory.CreateTempSubdirectory(prefix);
        if (!OperatingSystem.IsWindows())
            folder.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                                  | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | Others | UnixFileMode.OtherWrite;
        return folder;
    }
}
