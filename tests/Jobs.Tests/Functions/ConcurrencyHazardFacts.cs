using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Jobs.Core.Configuration;
using Jobs.Core.Functions;
using Jobs.Core.Functions.Python;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jobs.Tests.Functions;

/// <summary>
/// What requests share, provoked from many threads at once: argument binding (it used one static
/// NullabilityInfoContext, which is not thread-safe, per request) and the Python offers (read with synchronous SQL under
/// a lock on the request path, so a hung PostgreSQL held every request).
/// </summary>
public sealed class ConcurrencyHazardFacts
{
    [Fact]
    public async Task Binding_from_many_threads_at_once_gives_every_caller_the_right_answer()
    {
        var registry = new FunctionRegistry([new ClrFunctionProvider([typeof(FunctionRegistry).Assembly],
            new ServiceCollection().BuildServiceProvider(), Options.Create(new JobsOptions()))]);
        using var nullText = JsonDocument.Parse("[null]");
        using var text = JsonDocument.Parse("""["a"]""");
        using var none = JsonDocument.Parse("{}");
        var wrong = 0;
        await Parallel.ForAsync(0, 20_000, new ParallelOptions { MaxDegreeOfParallelism = 16 }, (i, _) =>
        {
            // A fresh lookup each time, as a request does; nullable and non-nullable parameters alternate.
            Assert.True(registry.TryGet(i % 2 == 0 ? "text.sha256" : "math.pow", out var function));
            try
            {
                function.Validate(i % 4 == 0 ? nullText.RootElement : text.RootElement, none.RootElement);
                if (i % 4 == 0 || i % 2 == 1) Interlocked.Increment(ref wrong); // null text, or "a" as a number: must refuse
            }
            catch (ArgumentBindingException e) when (i % 4 == 0 ? e.Message.Contains("must not be null") : e.Message.Contains("must be a number"))
            {
            }
            catch (Exception)
            {
                Interlocked.Increment(ref wrong);
            }
            return ValueTask.CompletedTask;
        });
        Assert.Equal(0, wrong);
    }

    [Fact]
    public async Task A_hung_postgresql_holds_neither_a_request_reading_the_offers_nor_the_apis_start_for_long()
    {
        // Accepts connections and never answers: a PostgreSQL stuck in its start-up exchange.
        using var blackHole = new TcpListener(IPAddress.Loopback, 0);
        blackHole.Start();
        var accepted = new List<Socket>();
        _ = Task.Run(async () => { while (true) accepted.Add(await blackHole.AcceptSocketAsync()); });
        var port = ((IPEndPoint)blackHole.LocalEndpoint).Port;
        await using var dataSource = NpgsqlDataSource.Create($"Host=127.0.0.1;Port={port};Username=x;Password=x;Timeout=30");
        var offered = new OfferedFunctions(dataSource, NullLogger<OfferedFunctions>.Instance);

        var clock = Stopwatch.StartNew();
        var start = offered.StartAsync(CancellationToken.None);
        var reads = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Task.Run(() =>
        {
            var one = Stopwatch.StartNew();
            var count = offered.Current.Count;
            return (count, one.Elapsed);
        })));
        Assert.All(reads, r => Assert.True(r.Elapsed < TimeSpan.FromMilliseconds(200), $"a read of the offers took {r.Elapsed}"));
        Assert.All(reads, r => Assert.Equal(0, r.count));
        await start;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the start waited {clock.Elapsed} for a PostgreSQL that never answers");
        await offered.StopAsync(CancellationToken.None);
        foreach (var socket in accepted.ToArray()) socket.Dispose();
    }
}
