using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Jobs.Launcher.Processes;

namespace Jobs.Benchmark;

/// <summary>The chaos soak's callback receiver: an HTTP listener that answers 200 and counts the deliveries per job.</summary>
internal sealed class CallbackCounter : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<Guid, int> _deliveries = new();

    public CallbackCounter(IPAddress address)
    {
        Url = $"http://{address}:{Network.FreePort(address)}/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public string Url { get; }

    /// <summary>Deliveries per job id.</summary>
    public IReadOnlyDictionary<Guid, int> Deliveries => _deliveries;

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(async () =>
            {
                try
                {
                    var body = await JsonNode.ParseAsync(context.Request.InputStream);
                    if (body?["id"]?.GetValue<Guid>() is { } id) _deliveries.AddOrUpdate(id, 1, (_, n) => n + 1);
                    context.Response.StatusCode = 200;
                }
                catch (Exception)
                {
                    context.Response.StatusCode = 400;
                }
                context.Response.Close();
            });
        }
    }

    public void Dispose() => _listener.Close();
}
