using Jobs.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Jobs.Tests.Clients;

/// <summary>
/// Clients generated from the live OpenAPI document by the generators teams use (issue 22), with the pinned tools of
/// tests/openapi, each compiled and run through the walkthrough of tests/openapi/walkthroughs against the real API and
/// workers: submit, read not-ready as not-ready, wait for the result, map and read the results in order, cancel, and
/// read a failed job's remote exception with its type. Generated code is compiled as written: no hand edit.
/// </summary>
public sealed class GeneratedClientTests(SystemFixture system, ITestOutputHelper output) : SystemTest(system)
{
    private static readonly string Walkthroughs = Path.Combine(OpenApiTools.Folder, "walkthroughs");

    [Theory]
    [InlineData("nswag-newtonsoft")]
    [InlineData("nswag-systemtextjson")]
    [InlineData("kiota")]
    public async Task A_generated_CSharp_client_runs_the_walkthrough(string client)
    {
        using var work = await WorkFolderAsync();
        var generated = Path.Combine(work.Path, "generated");
        await OpenApiTools.DotnetToolsAsync();
        string[] generate = client == "kiota"
            ? ["kiota", "generate", "--language", "CSharp", "--openapi", work.Document, "--output", generated,
               "--namespace-name", "Generated", "--class-name", "JobsClient", "--log-level", "Warning"]
            : ["nswag", "openapi2csclient", $"/input:{work.Document}", $"/output:{Path.Combine(generated, "JobsClient.cs")}",
               "/namespace:Generated", "/className:JobsClient", $"/jsonLibrary:{(client == "nswag-newtonsoft" ? "NewtonsoftJson" : "SystemTextJson")}"];
        Succeeds(await OpenApiTools.RunAsync("dotnet", ["tool", "run", .. generate], OpenApiTools.Folder), $"{client}: generating the client");

        var bin = Path.Combine(work.Path, "out");
        Succeeds(await OpenApiTools.RunAsync("dotnet", ["build", "Walkthroughs.csproj", $"-p:Client={client}", "-o", bin, "-nologo", "-v:q"], work.Path),
            $"{client}: compiling the generated client and the walkthrough");
        Walks(await OpenApiTools.RunAsync("dotnet", [Path.Combine(bin, "Walkthroughs.dll"), Fixture.ApiUrl.ToString()], work.Path, TimeSpan.FromMinutes(2)),
            client);
    }

    [Fact]
    public async Task An_openapi_typescript_client_compiles_under_strict_and_runs_the_walkthrough()
    {
        using var work = await WorkFolderAsync();
        var modules = await OpenApiTools.NodeModulesAsync();
        // The compiled walkthrough imports openapi-fetch: the work folder sees tests/openapi's packages.
        Directory.CreateSymbolicLink(Path.Combine(work.Path, "node_modules"), modules);
        Succeeds(await OpenApiTools.RunAsync("node", [Path.Combine(modules, "openapi-typescript", "bin", "cli.js"), work.Document,
            "--output", Path.Combine(work.Path, "generated", "schema.d.ts")], work.Path), "openapi-typescript");
        Succeeds(await OpenApiTools.RunAsync("node", [Path.Combine(modules, "typescript", "bin", "tsc"), "-p", "tsconfig.json"], work.Path),
            "tsc --strict (tests/openapi/walkthroughs/tsconfig.json)");
        Walks(await OpenApiTools.RunAsync("node", [Path.Combine(work.Path, "out", "walkthrough.mjs"), Fixture.ApiUrl.ToString()], work.Path,
            TimeSpan.FromMinutes(2)), "openapi-fetch");
    }

    /// <summary>A copy of tests/openapi/walkthroughs in a folder of its own, with the live document beside it.</summary>
    private async Task<WorkFolder> WorkFolderAsync()
    {
        var work = new WorkFolder(Directory.CreateTempSubdirectory("jobs-generated-client-").FullName);
        foreach (var file in Directory.EnumerateFiles(Walkthroughs)) File.Copy(file, Path.Combine(work.Path, Path.GetFileName(file)));
        Directory.CreateDirectory(Path.Combine(work.Path, "generated"));
        await File.WriteAllTextAsync(work.Document, await Http.GetStringAsync("/swagger/v1/swagger.json"));
        return work;
    }

    private void Succeeds((int ExitCode, string Output, string Errors) run, string what)
    {
        output.WriteLine($"{what}: exit {run.ExitCode}");
        Assert.True(run.ExitCode == 0, $"{what} failed ({run.ExitCode}):\n{run.Output}\n{run.Errors}");
    }

    private void Walks((int ExitCode, string Output, string Errors) run, string client)
    {
        output.WriteLine(run.Output + run.Errors);
        Assert.True(run.ExitCode == 0 && run.Output.Contains("walkthrough passed"), $"the {client} walkthrough failed ({run.ExitCode}):\n{run.Output}\n{run.Errors}");
    }

    private sealed class WorkFolder(string path) : IDisposable
    {
        public string Path { get; } = path;
        public string Document => System.IO.Path.Combine(Path, "openapi.json");
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
