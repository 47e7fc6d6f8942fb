namespace Jobs.Core.Functions.Python;

/// <summary>The worker's Python function provider (section "Python"): which modules' functions this worker runs.</summary>
public sealed class PythonOptions
{
    public const string Section = "Python";

    /// <summary>The interpreter that runs the modules.</summary>
    public string Executable { get; set; } = "python3";

    /// <summary>The modules whose public top-level functions this worker offers as <c>py:module.function</c>.</summary>
    public PythonModuleOptions[] Modules { get; set; } = [];
}

/// <summary>One module, with Pool's per-pool settings.</summary>
public sealed class PythonModuleOptions
{
    /// <summary>The module's .py file (relative paths are from the repository root or the working directory).</summary>
    public string Path { get; set; } = "";

    /// <summary>Pool's maxtasksperchild: a python3 process is replaced after this many calls; 0 = never.</summary>
    public int MaxTasksPerChild { get; set; }

    /// <summary>Pool's initializer: the name of a function of the module run once in each new python3 process.</summary>
    public string? Initializer { get; set; }

    /// <summary>Pool's initargs, as a JSON array (e.g. <c>[3]</c>).</summary>
    public string InitArgs { get; set; } = "[]";
}
