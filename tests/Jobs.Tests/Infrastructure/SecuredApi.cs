using System.Security.Cryptography;
using System.Text;
using Jobs.Launcher.Processes;

namespace Jobs.Tests.Infrastructure;

/// <summary>An API process of its own with API keys configured (the shared fixture's API has none).</summary>
public static class SecuredApi
{
    public static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Starts it with <paramref name="keys"/> (name, key, role) and waits until it is ready.</summary>
    public static async Task<(HttpClient Http, ChildProcess Api)> StartAsync(SystemFixture fixture, string name,
        IReadOnlyList<(string Name, string Key, string Role)> keys, Dictionary<string, string?>? extra = null)
    {
        var url = new Uri($"http://127.0.0.1:{Network.FreePort()}");
        var env = new Dictionary<string, string?>();
        for (var i = 0; i < keys.Count; i++)
        {
            env[$"Auth__ApiKeys__{i}__Name"] = keys[i].Name;
            env[$"Auth__ApiKeys__{i}__Sha256"] = Sha256(keys[i].Key);
            env[$"Auth__ApiKeys__{i}__Role"] = keys[i].Role;
        }
        foreach (var (k, v) in extra ?? []) env[k] = v;
        var api = fixture.StartApi(name, url, env);
        await Network.WaitForReadyAsync(url, () => api.HasExited, () => string.Join('\n', fixture.Output.TakeLast(30)), TimeSpan.FromSeconds(60));
        return (new HttpClient { BaseAddress = url }, api);
    }
}
