using System.Diagnostics;
using Jobs.Core;

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
            if (File.Exists(candidate) && ProcessSecurity.OthersCanReach(candidate, UnixFileMode.OtherExecute)) return candidate;
        return path;
    }

    /// <summary>
    /// <paramref name="module"/>, or — when the tests run as root and python3 (as <c>nobody</c>) could not read it
    /// there, as in a clone under /root — the same file among copies of its folder's modules in a folder every user can
    /// read: the tests pass wherever the repository was cloned.
    /// </summary>
    public static string Readable(string module)
    {
        if (OperatingSystem.IsWindows() || Environment.UserName != "root" || ProcessSecurity.OthersCanReach(module, UnixFileMode.OtherRead)) return module;
        var folder = TempFolder("jobs-module-");
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(module)!, "*.py"))
        {
            var copy = Path.Combine(folder.FullName, Path.GetFileName(file));
            File.Copy(file, copy);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        return Path.Combine(folder.FullName, Path.GetFileName(module));
    }

    /// <summary>
    /// <paramref name="folder"/> (a program's build output), or — when the tests run as root and <c>nobody</c> could
    /// not read it there — a copy of it every user can read and run.
    /// </summary>
    public static string ReadableFolder(string folder)
    {
        var probe = Directory.GetFiles(folder).First();
        if (OperatingSystem.IsWindows() || Environment.UserName != "root" || ProcessSecurity.OthersCanReach(probe, UnixFileMode.OtherRead)) return folder;
        var copy = TempFolder("jobs-program-copy-").FullName;
        foreach (var dir in Directory.GetDirectories(folder, "*", SearchOption.AllDirectories))
        {
            var made = Directory.CreateDirectory(Path.Combine(copy, Path.GetRelativePath(folder, dir)));
            made.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                                | UnixFileMode.GroupExecute | Others;
        }
        foreach (var file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(folder, file));
            File.Copy(file, target);
            File.SetUnixFileMode(target, File.GetUnixFileMode(file) | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        return copy;
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
