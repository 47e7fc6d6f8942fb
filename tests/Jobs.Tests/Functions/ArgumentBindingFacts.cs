using System.Text.Json;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Tests.Functions;

/// <summary>Python's binding rules for args/kwargs, without a database: the registry as both API and worker use it.</summary>
public sealed class ArgumentBindingFacts
{
    private static FunctionRegistry Registry(bool debugCrash = false) => new([new ClrFunctionProvider(
        [typeof(FunctionRegistry).Assembly, typeof(ArgumentBindingFacts).Assembly],
        new ServiceCollection().BuildServiceProvider(),
        Options.Create(new JobsOptions { EnableDebugCrash = debugCrash }))]);

    private static async Task<JsonElement?> Invoke(string name, string args, string kwargs = "{}")
    {
        Assert.True(Registry().TryGet(name, out var f));
        using var a = JsonDocument.Parse(args);
        using var k = JsonDocument.Parse(kwargs);
        var node = await f.InvokeAsync(a.RootElement, k.RootElement, JobContext.Detached, CancellationToken.None);
        return node is null ? null : JsonDocument.Parse(node.ToJsonString()).RootElement;
    }

    [Fact]
    public async Task Positional_keyword_and_default_arguments_bind_like_python()
    {
        Assert.Equal(1024, (await Invoke("math.pow", "[2]", """{"y":10}"""))!.Value.GetDouble());
        Assert.Equal(await Invoke("text.sha256", """["a"]"""), await Invoke("text.sha256", "[]", """{"text":"a","rounds":1}"""), JsonElementComparer);
        Assert.Equal(25, (await Invoke("primes.count", "[100]"))!.Value.GetInt32());
    }

    [Fact]
    public void Debug_crash_exists_only_when_enabled()
    {
        Assert.False(Registry().TryGet("debug.crash", out _));
        Assert.True(Registry(debugCrash: true).TryGet("debug.crash", out _));
    }

    [Fact]
    public void Function_names_must_be_unique()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new FunctionRegistry([
            new ClrFunctionProvider([typeof(FunctionRegistry).Assembly], new ServiceCollection().BuildServiceProvider(), Options.Create(new JobsOptions())),
            new ClrFunctionProvider([typeof(FunctionRegistry).Assembly], new ServiceCollection().BuildServiceProvider(), Options.Create(new JobsOptions()))]));
        Assert.Contains("unique", error.Message);
    }

    [Fact]
    public async Task Instance_functions_get_their_services_from_dependency_injection()
    {
        var services = new ServiceCollection().AddSingleton(new Greeting("hello")).BuildServiceProvider();
        var registry = new FunctionRegistry([new ClrFunctionProvider([typeof(ArgumentBindingFacts).Assembly], services, Options.Create(new JobsOptions()))]);
        Assert.True(registry.TryGet("test.greet", out var greet));
        using var args = JsonDocument.Parse("""["world"]""");
        var result = await greet.InvokeAsync(args.RootElement, default, JobContext.Detached, CancellationToken.None);
        Assert.Equal("hello, world", result!.GetValue<string>());
    }

    [Fact]
    public async Task The_function_sees_its_own_exception_not_a_reflection_wrapper()
    {
        var error = await Assert.ThrowsAsync<Jobs.Core.Functions.BuiltIn.DebugFailureException>(() => Invoke("debug.fail", """["no"]"""));
        Assert.Equal("no", error.Message);
    }

    [Fact]
    public void Cancellation_token_and_job_context_are_injected_not_advertised()
    {
        Assert.True(Registry().TryGet("progress.demo", out var f));
        Assert.Equal(["steps", "delayMs"], f.Parameters.Select(p => p.Name));
    }

    private static readonly IEqualityComparer<JsonElement?> JsonElementComparer =
        EqualityComparer<JsonElement?>.Create((a, b) => a?.GetRawText() == b?.GetRawText(), e => e?.GetRawText().GetHashCode() ?? 0);
}

public sealed record Greeting(string Word);

public sealed class GreetingFunctions(Greeting greeting)
{
    [JobFunction("test.greet", Description = "An instance function with a service from DI.")]
    public string Greet(string name) => $"{greeting.Word}, {name}";
}
