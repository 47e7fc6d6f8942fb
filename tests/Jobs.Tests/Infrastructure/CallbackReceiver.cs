using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Jobs.Core.Callbacks;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>A real HTTP server that records the callbacks it receives: on 127.0.0.1, or on <c>address</c> (a host network's gateway).</summary>
public sealed class CallbackReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly BlockingCollection<Delivery> _deliveries = new();
    private int _received;

    public int FailFirst { get; set; }
    public string Url { get; }

    /// <summary>Deliveries answered 200 so far.</summary>
    public int Received => Volatile.Read(ref _received);

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
        var attempts = 0;
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            attempts++;
            context.Response.StatusCode = attempts <= FailFirst ? 500 : 200;
            context.Response.Close();
            if (attempts > FailFirst)
            {
                Interlocked.Increment(ref _received);
                _deliveries.Add(new Delivery(context.Request.Url!.AbsolutePath, body.ToArray(),
                    context.Request.Headers[CallbackSender.SignatureHeader], int.Parse(context.Request.Headers["X-Jobs-Delivery-Attempt"] ?? "0")));
            }
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
