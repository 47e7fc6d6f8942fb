using System.ComponentModel.DataAnnotations;

namespace Jobs.Core.Functions.Python;

/// <summary>The worker's Python function provider (section "Python"): which modules' functions this worker runs.</summary>
public sealed class PythonOptions : IValidatableObject
{
    private static bool IsJsonArray(string text)
    {
        try
        {
            using var parsed = System.Text.Json.JsonDocument.Parse(text);
            return parsed.RootElement.ValueKind == System.Text.Json.JsonValueKind.Array;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    public const string Section = "Python";

    /// <summary>The interpreter that runs the modules.</summary>
    public string Executable { get; set; } = "python3";

    /// <summary>The modules whose public top-level functions this worker offers as <c>py:module.function</c>.</summary>
    public PythonModuleOptions[] Modules { get; set; } = [];

    /// <summary>
    /// Functions of importable modules (the standard library, installed packages) this worker also offers, as Pool
    /// sends <c>os.getpid</c> or <c>time.sleep</c>: <c>"os.getpid"</c>, <c>"builtins.str.upper"</c>, or <c>"math.*"</c> for a
    /// module's public functions. Each is offered under the name pickle gives it (<c>py:posix.getpid</c>,
    /// <c>py:builtins.str.upper</c>). None by default: whatever is listed can be called by every API client.
    /// </summary>
    public string[] Imports { get; set; } = [];

    /// <summary>
    /// Names of the worker's environment variables python3 processes also get, beyond the minimal set of
    /// <see cref="PythonEnvironment.Inherited"/> (e.g. LD_LIBRARY_PATH, SSL_CERT_FILE, HTTPS_PROXY). The service's own
    /// configuration (ConnectionStrings__*, Auth__*, Callbacks__*) is refused: it holds the database password and keys.
    /// </summary>
    public string[] PassEnvironment { get; set; } = [];

    /// <summary>Variables set for python3 processes, by name (e.g. <c>Python__Environment__OMP_NUM_THREADS=1</c>).</summary>
    public Dictionary<string, string> Environment { get; set; } = [];

    /// <summary>
    /// The OS user python3 runs as. Unset: <c>nobody</c> when the worker runs as root (user code never runs as root),
    /// else the worker's own user. Empty: the worker's own user, even root. A name: that user (the worker must be root).
    /// The module files, their folders and <see cref="Executable"/> must be readable by that user.
    /// </summary>
    public string? User { get; set; }

    /// <summary>The user python3 is started as; null: the worker's own.</summary>
    public string? RunAs => User switch
    {
        null => ProcessSecurity.IsRoot ? "nobody" : null,
        "" => null,
        var user when user == System.Environment.UserName => null,
        var user => user,
    };

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (member, name) in PassEnvironment.Select(n => (nameof(PassEnvironment), n)).Concat(Environment.Keys.Select(n => (nameof(Environment), n))))
        {
            if (string.IsNullOrEmpty(name) || name.Contains('=', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
                yield return new ValidationResult($"Python:{member}: '{name}' is not an environment variable name.", [member]);
        }
        for (var i = 0; i < Modules.Length; i++)
        {
            var module = Modules[i];
            if (PythonModuleOptions.Resolve(module.Path) is null)
                yield return new ValidationResult($"Python:Modules:{i}:Path: no module file at '{module.Path}' (absolute, or relative to the " +
                                                  "working directory or the repository root).", [nameof(Modules)]);
            if (module.MaxTasksPerChild < 0)
                yield return new ValidationResult($"Python:Modules:{i}:MaxTasksPerChild is 0 (never replace) or more.", [nameof(Modules)]);
            if (!IsJsonArray(module.InitArgs))
                yield return new ValidationResult($"Python:Modules:{i}:InitArgs must be a JSON array such as [1, \"a\"]; it is '{module.InitArgs}'.", [nameof(Modules)]);
            if (module.Initializer is { } init && !System.Text.RegularExpressions.Regex.IsMatch(init, "^[A-Za-z_][A-Za-z0-9_]*$"))
                yield return new ValidationResult($"Python:Modules:{i}:Initializer must be the name of a function of the module; it is '{init}'.", [nameof(Modules)]);
        }
        foreach (var entry in Imports.Where(e => !System.Text.RegularExpressions.Regex.IsMatch(e ?? "", @"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\.\*)?$")))
            yield return new ValidationResult($"Python:Imports: '{entry}' is not a dotted name such as os.getpid or math.*.", [nameof(Imports)]);
        if (RunAs is { } runAs && !ProcessSecurity.IsRoot)
            yield return new ValidationResult($"Python:User: only a worker started as root can run python3 as another user; this one runs as " +
                                              $"'{System.Environment.UserName}', not '{runAs}'. Leave Python:User empty (python3 runs as the worker's user).", [nameof(User)]);
        foreach (var name in PassEnvironment.Where(PythonEnvironment.IsServiceSecret))
            yield return new ValidationResult(
                $"Python:PassEnvironment: {name} is this service's own configuration (it may hold the database password or API keys); " +
                "it is never passed to Python code. Set what the code needs with Python:Environment instead.", [nameof(PassEnvironment)]);
    }
}

/// <summary>One module, with Pool's per-pool settings.</summary>
public sealed class PythonModuleOptions
{
    /// <summary>The full path of <paramref name="path"/>: absolute, or relative to the working directory, the program's folder or a folder above it (the repository root, in a checkout); null when there is no such file.</summary>
    public static string? Resolve(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) return null;
        var bases = new List<string> { Directory.GetCurrentDirectory() };
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent) bases.Add(dir.FullName);
        return bases.Select(b => System.IO.Path.Combine(b, path)).Where(File.Exists).Select(System.IO.Path.GetFullPath).FirstOrDefault();
    }

    /// <summary>The folder <paramref name="path"/>'s module file is in: where its code runs (its working directory).</summary>
    public static string? Folder(string path) =>
        System.IO.Path.GetDirectoryName(Resolve(path) ?? System.IO.Path.GetFullPath(path));

    /// <summary>
    /// The functions of Python:Imports, served by one pool of their own, run in the worker's working directory — or in
    /// <paramref name="workingDirectory"/> (python3 running as another user, who may not enter the worker's).
    /// </summary>
    public static PythonModuleOptions ForImports(IReadOnlyList<string> imports, string? workingDirectory = null) =>
        new() { _imports = System.Text.Json.JsonSerializer.Serialize(imports), _importsDirectory = workingDirectory };

    private string? _imports;
    private string? _importsDirectory;

    /// <summary>What jobs_host.py is pointed at after its command: the module's file, or <c>--imports JSON</c>.</summary>
    public IReadOnlyList<string> HostTarget => _imports is null ? [Path] : ["--imports", _imports];

    /// <summary>Where the module's code runs: its file's folder; the worker's working directory for imports.</summary>
    public string WorkingDirectory => _imports is null ? Folder(Path)! : _importsDirectory ?? Directory.GetCurrentDirectory();

    /// <summary>The module's .py file (relative paths are from the repository root or the working directory).</summary>
    public string Path { get; set; } = "";

    /// <summary>Pool's maxtasksperchild: a python3 process is replaced after this many calls; 0 = never.</summary>
    public int MaxTasksPerChild { get; set; }

    /// <summary>Pool's initializer: the name of a function of the module run once in each new python3 process.</summary>
    public string? Initializer { get; set; }

    /// <summary>Pool's initargs, as a JSON array (e.g. <c>[3]</c>).</summary>
    public string InitArgs { get; set; } = "[]";
}
