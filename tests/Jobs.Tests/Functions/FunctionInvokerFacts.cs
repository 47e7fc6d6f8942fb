using System.Diagnostics;
using System.Text.Json;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Functions.BuiltIn;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jobs.Tests.Functions;

/// <summary>
/// The one invoker jobs and map items share, fact by fact, without a database: how a call ends (result, failure,
/// timeout, interrupt, a result PostgreSQL cannot store) is decided here for both.
/// </summary>
public sealed class FunctionInvokerFacts
{
    private static readonly FunctionInvoker Invoker = new(new FunctionRegistry([new ClrFunctionProvider(
        [typeof(FunctionRegistry).Assembly, typeof(FunctionInvokerFacts).Assembly],
        new ServiceCollection().BuildServiceProvider(), Options.Create(new JobsOptions()))]));

    private static readonly JsonElement NoKwargs = JsonDocument.Parse("{}").RootElement;

    private static Task<Invocation> Call(string function, string args, TimeSpan? timeout = null, bool isolate = false, CancellationToken interrupt = default) =>
        Invoker.InvokeAsync(function, args, NoKwargs, JobContext.Detached, timeout, isolate, interrupt);

    [Fact]
    public async Task A_result_comes_back_as_json_text_with_the_time_it_took()
    {
        var call = await Call("math.square", "[3]");

        Assert.Equal("9", call.Result);
        Assert.Null(call.Failure);
        Assert.False(call.Interrupted);
        Assert.True(call.Duration > TimeSpan.Zero);
    }

    [Fact]
    public async Task The_functions_own_exception_is_the_failure()
    {
        var call = await Call("debug.fail", """["the disk is full"]""");

        Assert.IsType<DebugFailureException>(call.Failure);
        Assert.Null(call.Result);
    }

    [Fact]
    public async Task A_function_this_process_does_not_have_fails_with_the_name_clients_know()
    {
        var call = await Call("no.such", "[]");

        Assert.IsType<UnknownFunctionException>(call.Failure);
        Assert.Equal("Jobs.Core.Execution.UnknownFunctionException", JsonDocument.Parse(ErrorJson.From(call.Failure!)).RootElement.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_result_json_cannot_carry_fails_as_MaybeEncodingError()
    {
        var call = await Call("math.pow", "[1e308, 2]");

        Assert.IsType<MaybeEncodingError>(call.Failure);
        Assert.Contains("result", call.Failure!.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_timeout_ends_even_a_call_that_ignores_its_token(bool isolate)
    {
        var clock = Stopwatch.StartNew();
        var call = await Call("test.stubborn", "[3000]", timeout: TimeSpan.FromMilliseconds(200), isolate: isolate);

        Assert.IsType<JobTimeoutException>(call.Failure);
        Assert.Equal("Jobs.Core.Execution.JobTimeoutException", JsonDocument.Parse(ErrorJson.From(call.Failure!)).RootElement.GetProperty("type").GetString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task An_interrupt_ends_the_call_as_interrupted_not_failed()
    {
        using var interrupt = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var call = await Call("time.sleep", "[10]", interrupt: interrupt.Token);

        Assert.True(call.Interrupted);
        Assert.Null(call.Failure);
        Assert.Null(call.Result);
    }

    [Fact]
    public async Task Isolated_an_interrupt_ends_a_call_that_ignores_its_token_at_once()
    {
        using var interrupt = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();
        var call = await Call("test.stubborn", "[3000]", isolate: true, interrupt: interrupt.Token);

        Assert.True(call.Interrupted);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [JobFunction("test.stubborn", Description = "Sleeps, ignoring its cancellation token.")]
    public static int Stubborn(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return milliseconds;
    }
}
