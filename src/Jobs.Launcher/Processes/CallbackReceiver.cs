using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Jobs.Core.Callbacks;

namespace Jobs.Launcher.Processes;

/// <summary>
/// A real HTTP server that records the callbacks it receives (for the tests and the benchmark's chaos soak, not for the
/// service): on 127.0.0.1, or on <c>address</c> (a <see cref="HostNetwork"/>'s gateway). It answers 500 to the first
/// <see cref="FailFirst"/> deliveries, 200 after; what it answered 200 is kept, in order and counted per job.
/// </summary>
public sealed class CallbackReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly BlockingCollection<Delivery> _deliveries = new();
    private readonly ConcurrentDictionary<Guid, int> _perJob = new();
    private int _attempts;

    public int FailFirst { get; set; }
    public string Url { get; }

    /// <summary>Deliveries answered 200 so far.</summary>
    public int Received => _perJob.Values.Sum();

    /// <summary>Deliveries answered 200, per job (its <c>X-Jobs-Job-Id</c>).</summary>
    public IReadOnlyDictionary<Guid, int> PerJob => _perJob;

    public CallbackReceiver(IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        Url = $"http://{address}:{Network.FreePort(address)}/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var accepted = Interlocked.Increment(ref _attempts) > FailFirst;
            context.Response.StatusCode = accepted ? 200 : 500;
            context.Response.Close();
            if (!accepted) return;
            if (Guid.TryParse(context.Request.Headers["X-Jobs-Job-Id"], out var job)) _perJob.AddOrUpdate(job, 1, (_, n) => n + 1);
            _deliveries.Add(new Delivery(context.Request.Url!.AbsolutePath, body.ToArray(),
                context.Request.Headers[CallbackSender.SignatureHeader], int.Parse(context.Request.Headers["X-Jobs-Delivery-Attempt"] ?? "0")));
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // the receiver closed, or the sender gave up mid-delivery
        }
    }

    public Task<Delivery> NextAsync(TimeSpan? timeout = null) => Task.Run(() =>
        _deliveries.TryTake(out var d, timeout ?? TimeSpan.FromSeconds(20)) ? d : throw new TimeoutException("no callback arrived"));

    public void Dispose() => _listener.Close();
}

public sealed record Delivery(string Path, byte[] Body, string? Signature, int Attempt)
{
    public override string ToString() => Encoding.UTF8.GetString(Body);
}
