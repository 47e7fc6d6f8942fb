using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jobs.Client;

/// <summary>Pool's AsyncResult for one job: <see cref="GetAsync{T}"/>, <see cref="WaitAsync"/>, <see cref="Ready"/>, <see cref="Successful"/>.</summary>
public sealed class JobHandle
{
    private readonly JobsClient _client;
    private JsonObject _job;

    internal JobHandle(JobsClient client, JsonObject job, string? warning = null) =>
        (_client, _job, Id, Warning) = (client, job, job["id"]!.GetValue<Guid>(), warning);

    public Guid Id { get; }

    /// <summary>Set when the service accepted the job with a warning: no live worker serves its queue, so it waits.</summary>
    public string? Warning { get; private set; }

    /// <summary>The last JobView seen (state, attempts, progress, …).</summary>
    public JsonObject View => _job;

    /// <summary>Whether the job has finished, as last seen; <see cref="WaitAsync"/> or <see cref="RefreshAsync"/> update it.</summary>
    public bool Ready => _job["ready"]?.GetValue<bool>() == true;

    /// <summary>Whether it finished successfully; throws while it is not ready, as Pool's successful() does.</summary>
    public bool Successful => Ready ? _job["successful"]?.GetValue<bool>() == true : throw new InvalidOperationException($"Job {Id} is not ready.");

    public async Task RefreshAsync(CancellationToken ct = default) => await WaitCoreAsync(TimeSpan.Zero, ct);

    /// <summary>Waits until the job finishes or <paramref name="timeout"/> passes (no exception either way).</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        var deadline = timeout == Timeout.InfiniteTimeSpan ? DateTime.MaxValue : DateTime.UtcNow + timeout;
        while (!Ready)
        {
            var left = deadline == DateTime.MaxValue ? JobsClient.LongestWait : deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return;
            await WaitCoreAsync(left < JobsClient.LongestWait ? left : JobsClient.LongestWait, ct);
        }
    }

    /// <summary>get(timeout): the result; <see cref="RemoteJobException"/> if it failed; <see cref="TimeoutException"/> if not finished in time.</summary>
    public async Task<T?> GetAsync<T>(TimeSpan timeout, CancellationToken ct = default)
    {
        await WaitAsync(timeout, ct);
        if (!Ready) throw new TimeoutException($"Job {Id} did not finish within {timeout}.");
        if (Successful) return _job["result"].Deserialize<T>(JobsClient.Json);
        throw RemoteJobException.From(_job["error"] as JsonObject ?? []);
    }

    /// <summary>Cancels the job (DELETE /jobs/{id}); false when it had already finished.</summary>
    public async Task<bool> CancelAsync(CancellationToken ct = default)
    {
        using var response = await _client.Http.DeleteAsync($"/jobs/{Id}", ct);
        if ((int)response.StatusCode == 409) return false;
        _job = await JobsClient.ReadAsync(response, ct);
        return true;
    }

    /// <summary>
    /// Runs the job again if it failed or was canceled (POST /jobs/{id}/retry): same id, its attempts going on. False when
    /// it was not failed or canceled (409); then nothing changed.
    /// </summary>
    public async Task<bool> RetryAsync(CancellationToken ct = default)
    {
        using var response = await _client.Http.PostAsync($"/jobs/{Id}/retry", null, ct);
        if ((int)response.StatusCode == 409) return false;
        _job = await JobsClient.ReadAsync(response, ct);
        Warning = JobsClient.WarningOf(response);
        return true;
    }

    private async Task WaitCoreAsync(TimeSpan wait, CancellationToken ct)
    {
        using var response = await _client.Http.GetAsync($"/jobs/{Id}?wait={Math.Max(0, (int)wait.TotalSeconds)}", ct);
        _job = await JobsClient.ReadAsync(response, ct);
    }
}
