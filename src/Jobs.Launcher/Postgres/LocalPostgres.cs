using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using Jobs.Launcher.Processes;
using Npgsql;

namespace Jobs.Launcher.Postgres;

/// <summary>
/// A private PostgreSQL cluster run from the machine's own server binaries: its own data folder, a free
/// loopback port, a generated password, TCP on 127.0.0.1 only. Used by the launcher when no connection
/// string is configured, and by the tests and the benchmark. initdb refuses to run as root, so as root the
/// cluster is created and run as the <c>postgres</c> system user.
/// </summary>
public sealed class LocalPostgres : IAsyncDisposable
{
    public const string Superuser = "jobs";

    private readonly string _bin;
    private readonly bool _stopOnDispose;
    private readonly Action<string> _log;
    private readonly NetworkHost? _host;
    private string _extraSettings = "";

    public string DataDirectory { get; }
    public int Port { get; }
    private string Password { get; }

    private LocalPostgres(string bin, string dataDirectory, int port, string password, bool stopOnDispose, Action<string> log, NetworkHost? host = null)
    {
        _host = host;
        _bin = bin;
        DataDirectory = dataDirectory;
        Port = port;
        Password = password;
        _stopOnDispose = stopOnDispose;
        _log = log;
    }

    /// <summary>Where it listens: 127.0.0.1, or its host's address (<see cref="StartAsync"/>'s <c>host</c>).</summary>
    public string Address => _host?.Address.ToString() ?? "127.0.0.1";

    public string ConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = Address,
        Port = Port,
        Username = Superuser,
        Password = Password,
        Database = database,
    }.ConnectionString;

    /// <summary>Starts the cluster in <paramref name="dataDirectory"/>, creating it on first use; reuses one already running there.</summary>
    /// <param name="host">
    /// A host of a <see cref="HostNetwork"/> to run on, listening on its address (the benchmark's <c>--hosts</c>); one
    /// already running elsewhere is stopped first.
    /// </param>
    public static async Task<LocalPostgres> StartAsync(string dataDirectory, Action<string>? log = null, int port = 0, CancellationToken ct = default,
        string extraSettings = "", NetworkHost? host = null)
    {
        log ??= Console.WriteLine;
        var bin = FindBinaries();
        dataDirectory = Path.GetFullPath(dataDirectory);
        if (Posix.IsRoot && !PostgresUserCanReach(dataDirectory))
        {
            // e.g. a clone under /root: the postgres user cannot enter it, so the cluster lives elsewhere.
            var hash = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(dataDirectory)))[..12];
            var fallback = Path.Combine("/var/tmp/jobs-postgres", hash);
            log($"postgres: the postgres user cannot reach {dataDirectory}; using {fallback} instead");
            dataDirectory = fallback;
        }
        var passwordFile = dataDirectory.TrimEnd('/') + ".password";

        if (!File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
            await InitAsync(bin, dataDirectory, passwordFile, log, ct);
        // Only the launcher's user reads it (user code runs as another user, or cannot read what root made 0600);
        // one written by an older version with the default mode is tightened.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var password = (await File.ReadAllTextAsync(passwordFile, ct)).Trim();

        var running = RunningPort(dataDirectory);
        if (host is not null && running is not null)
            await RunAsync(bin, "pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"], ct); // it listens elsewhere
        else if (running is { } runningPort && await AcceptsAsync(runningPort, password, ct))
        {
            log($"postgres: reusing the cluster already running in {dataDirectory} on port {runningPort}");
            return new LocalPostgres(bin, dataDirectory, runningPort, password, stopOnDispose: false, log);
        }

        port = port > 0 ? port : Network.FreePort();
        var started = new LocalPostgres(bin, dataDirectory, port, password, stopOnDispose: true, log, host) { _extraSettings = extraSettings };
        await started.StartServerAsync(ct);
        log($"postgres: started {dataDirectory} on {started.Address}:{port}{(host is null ? "" : $" (host {host.Name})")} (log: {Path.Combine(dataDirectory, "server.log")})");
        return started;
    }

    /// <summary>pg_ctl start, on this cluster's host when it has one (pg_ctl's server stays in the host's namespace).</summary>
    private Task StartServerAsync(CancellationToken ct)
    {
        var extraSettings = _extraSettings;
        if (_host is not null)
        {
            // Its clients come from the hosts' network, which the cluster's own pg_hba.conf (loopback only) does not let in:
            // a copy that also admits that /24, with passwords, for this start only.
            var hba = Path.Combine(DataDirectory, "pg_hba.hosts.conf");
            var network = _host.Address.GetAddressBytes();
            File.WriteAllText(hba, File.ReadAllText(Path.Combine(DataDirectory, "pg_hba.conf"))
                + $"\nhost all all {network[0]}.{network[1]}.{network[2]}.0/24 scram-sha-256\n");
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(hba, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            extraSettings = $"-c hba_file={hba} {extraSettings}";
        }
        var logFile = Path.Combine(DataDirectory, "server.log");
        return RunAsync(_bin, "pg_ctl", ["-D", DataDirectory, "-l", logFile, "-w", "-t", "60", "-o",
            $"-p {Port} -c listen_addresses={Address} -c unix_socket_directories='' -c max_connections=300 {extraSettings}".TrimEnd(), "start"], ct,
            $"see {logFile}", _host?.Launch);
    }

    /// <summary>Creates <paramref name="database"/> if missing; with <paramref name="recreate"/>, drops it first.</summary>
    public async Task EnsureDatabaseAsync(string database, bool recreate = false, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync(ct);
        var quoted = "\"" + database.Replace("\"", "\"\"") + "\"";
        if (recreate)
        {
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync(ct);
        }
        await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection) { Parameters = { new() { Value = database } } };
        if (await exists.ExecuteScalarAsync(ct) is null)
        {
            await using var create = new NpgsqlCommand($"CREATE DATABASE {quoted}", connection);
            await create.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>Stops the server (fast shutdown: open transactions roll back, committed data is safe).</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        await RunAsync(_bin, "pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "stop"], ct);
        _log($"postgres: stopped {DataDirectory}");
    }

    /// <summary>Starts it again on the same port, e.g. after <see cref="StopAsync"/> in an outage test.</summary>
    public Task RestartAsync(CancellationToken ct = default) => StartServerAsync(ct);

    public async ValueTask DisposeAsync()
    {
        if (_stopOnDispose) await StopAsync();
    }

    /// <summary>Writes a file only its owner can read, from its creation on (never readable for a moment in between).</summary>
    private static async Task WritePrivateAsync(string path, string text, CancellationToken ct)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using var stream = new FileStream(path, options);
        await using var writer = new StreamWriter(stream);
        await writer.WriteAsync(text.AsMemory(), ct);
    }

    private static async Task InitAsync(string bin, string dataDirectory, string passwordFile, Action<string> log, CancellationToken ct)
    {
        log($"postgres: creating a private cluster in {dataDirectory}");
        Directory.CreateDirectory(dataDirectory);
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        // initdb reads the password from a file; it must be readable by whoever runs initdb.
        var pwfile = Path.Combine(Path.GetTempPath(), $"jobs-pw-{Guid.NewGuid():N}");
        await WritePrivateAsync(pwfile, password, ct);
        try
        {
            if (Posix.IsRoot)
            {
                await RunAsync(null, "chown", ["postgres:postgres", dataDirectory, pwfile], ct);
            }
            await RunAsync(bin, "initdb", ["-D", dataDirectory, "-U", Superuser, "--pwfile", pwfile,
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C"], ct);
            await WritePrivateAsync(passwordFile, password, ct);
        }
        finally
        {
            File.Delete(pwfile);
        }
    }

    /// <summary>The server binaries: on PATH, or in Debian's /usr/lib/postgresql/N/bin (newest N).</summary>
    private static string FindBinaries()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("JOBS_PG_BIN") is { Length: > 0 } configured) candidates.Add(configured);
        if (Directory.Exists("/usr/lib/postgresql"))
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .Select(d => Path.Combine(d, "bin")));
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        candidates.AddRange(["/opt/homebrew/bin", "/usr/local/bin"]);
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
            ?? throw new InvalidOperationException(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin. " +
                "Install them — Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install postgresql-server; " +
                "macOS: brew install postgresql@15 — or point JOBS_PG_BIN at their folder, or set ConnectionStrings__Jobs " +
                "to use an existing PostgreSQL instead.");
    }

    private static bool PostgresUserCanReach(string dataDirectory)
    {
        var parent = Path.GetDirectoryName(dataDirectory)!;
        Directory.CreateDirectory(parent);
        var probe = Process.Start(new ProcessStartInfo("runuser", ["-u", "postgres", "--", "test", "-x", parent])
        { RedirectStandardError = true, RedirectStandardOutput = true });
        if (probe is null) return false;
        probe.WaitForExit();
        return probe.ExitCode == 0;
    }

    private static int? RunningPort(string dataDirectory)
    {
        // postmaster.pid: line 1 the pid, line 4 the port (PostgreSQL's documented layout).
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile)) return null;
        try
        {
            var lines = File.ReadAllLines(pidFile);
            return lines.Length > 3 && int.TryParse(lines[3], out var port) ? port : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task<bool> AcceptsAsync(int port, string password, CancellationToken ct)
    {
        try
        {
            var cs = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = Superuser, Password = password, Database = "postgres", Timeout = 3, Pooling = false };
            await using var connection = new NpgsqlConnection(cs.ConnectionString);
            await connection.OpenAsync(ct);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Runs a PostgreSQL tool (or, with <paramref name="bin"/> null, a system one), as the postgres user when we are root.</summary>
    private static async Task RunAsync(string? bin, string tool, IEnumerable<string> args, CancellationToken ct, string? hint = null,
        IReadOnlyList<string>? launch = null)
    {
        var program = bin is null ? tool : Path.Combine(bin, tool);
        string[] command = Posix.IsRoot && bin is not null ? ["runuser", "-u", "postgres", "--", program, .. args] : [program, .. args];
        command = [.. launch ?? [], .. command];
        var info = new ProcessStartInfo(command[0], command[1..]);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        info.WorkingDirectory = Path.GetTempPath();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{tool} failed (exit {process.ExitCode}): {(await stderr).Trim()} {(await stdout).Trim()} {hint}".Trim());
    }
}
