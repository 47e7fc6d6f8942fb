using Generated;

/// <summary>
/// The walkthrough with NSwag's client (either JSON mode: the generated types are the same): what a user does with the
/// pool, through generated code only. A status the operation declares besides its success type (202 not ready, 424
/// remote error) arrives as NSwag's ApiException&lt;T&gt; with T the declared schema.
/// </summary>
internal static class Walkthrough
{
    public static async Task RunAsync(Uri api)
    {
        using var http = new HttpClient();
        var client = new JobsClient(http) { BaseUrl = api.ToString().TrimEnd('/') };

        var functions = await client.ListFunctionsAsync();
        var pow = functions.Single(f => f.Name == "math.pow");
        Check.That(pow.Parameters.Count == 2, "math.pow lists its two parameters");
        Check.Step($"GET /functions: {functions.Count} functions, math.pow({string.Join(", ", pow.Parameters.Select(p => p.Name))})");

        // Not ready yet reads as not ready: the 202 is typed (the job), not a result of null.
        var sleeping = await client.SubmitJobAsync(null, null, new SubmitJobRequest { Function = "time.sleep", Args = new[] { 1.5 } });
        try
        {
            var early = await client.GetJobResultAsync(sleeping.Id, 0);
            throw new WalkthroughFailed($"a 1.5 s job had a result at once: {Check.Text(early.Result)}");
        }
        catch (ApiException<JobView> notReady) when (notReady.StatusCode == 202)
        {
            Check.That(!notReady.Result.Ready, "the 202's job is not ready");
            Check.That(notReady.Result.State is JobViewState.Enqueued or JobViewState.Processing, $"state {notReady.Result.State}");
            Check.Step($"GET /jobs/{{id}}/result?timeout=0 → 202, {notReady.Result.State}");
        }
        var slept = await client.GetJobResultAsync(sleeping.Id, 30);
        Check.Equal(1.5, slept.Result, "time.sleep(1.5)'s result");
        Check.Step("GET /jobs/{id}/result?timeout=30 → 200, 1.5");

        var squared = await client.SubmitJobAsync(30, null, new SubmitJobRequest { Function = "math.square", Args = new[] { 7 } });
        Check.That(squared.Ready && squared.Successful == true && squared.State == JobViewState.Succeeded, $"math.square(7) is {squared.State}");
        Check.Equal(49, squared.Result, "math.square(7) submitted with wait");
        Check.Step("POST /jobs?wait=30 → succeeded, 49");

        var map = await client.SubmitMapAsync(null, null, new SubmitMapRequest { Function = "math.square", Items = Enumerable.Range(1, 10).ToArray(), Chunksize = 3 });
        Check.Equal(10, map.Total, "the map's total");
        var results = await client.GetMapResultsAsync(map.Id, 30);
        Check.Equal("1,4,9,16,25,36,49,64,81,100", string.Join(",", results.Results.Select(Check.Text)), "the map's results in input order");
        Check.Step("POST /maps, GET /maps/{id}/results → 1 … 100 in order");

        var longJob = await client.SubmitJobAsync(null, null, new SubmitJobRequest { Function = "time.sleep", Args = new[] { 60 } });
        await client.CancelJobAsync(longJob.Id);
        var canceled = await client.GetJobAsync(longJob.Id, 30);
        Check.That(canceled.State == JobViewState.Canceled && canceled.Ready && canceled.Successful == false, $"the canceled job is {canceled.State}");
        Check.Step("DELETE /jobs/{id} → canceled");

        var failing = await client.SubmitJobAsync(null, null, new SubmitJobRequest { Function = "debug.fail", Args = new[] { "boom" } });
        try
        {
            await client.GetJobResultAsync(failing.Id, 30);
            throw new WalkthroughFailed("debug.fail returned a result");
        }
        catch (ApiException<RemoteErrorProblem> remote) when (remote.StatusCode == 424)
        {
            Check.That(remote.Result.ExceptionType.EndsWith("DebugFailureException"), $"exceptionType {remote.Result.ExceptionType}");
            Check.Equal("boom", remote.Result.Message, "the remote exception's message");
            Check.Equal(failing.Id, remote.Result.JobId, "the problem's jobId");
            Check.Step($"GET /jobs/{{id}}/result → 424, {remote.Result.ExceptionType}: {remote.Result.Message}");
        }
    }
}
