using Generated;
using Generated.Models;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Abstractions.Serialization;
using Microsoft.Kiota.Http.HttpClientLibrary;

/// <summary>
/// The walkthrough with Kiota's client. Kiota reads every 2xx of an operation as its lowest one's schema, so the
/// result endpoints' 202 (not ready) arrives as a JobResult/MapResults with <c>ready</c> false and no value; a
/// declared problem status (424) is thrown as its schema's exception type.
/// </summary>
internal static class Walkthrough
{
    public static async Task RunAsync(Uri api)
    {
        using var http = new HttpClient();
        var adapter = new HttpClientRequestAdapter(new AnonymousAuthenticationProvider(), httpClient: http) { BaseUrl = api.ToString().TrimEnd('/') };
        var client = new JobsClient(adapter);

        var functions = await client.Functions.GetAsync();
        var pow = functions.Single(f => f.Name == "math.pow");
        Check.That(pow.Parameters.Count == 2, "math.pow lists its two parameters");
        Check.Step($"GET /functions: {functions.Count} functions, math.pow({string.Join(", ", pow.Parameters.Select(p => p.Name))})");

        var sleeping = await client.Jobs.PostAsync(new SubmitJobRequest { Function = "time.sleep", Args = Array(new UntypedDouble(1.5)) });
        var early = await client.Jobs[sleeping.Id.Value].Result.GetAsync(c => c.QueryParameters.Timeout = 0);
        Check.That(early.Ready == false, $"a 1.5 s job read at once is not ready (ready {early.Ready}, result {Check.Text(Value(early.Result))})");
        Check.Step("GET /jobs/{id}/result?timeout=0 → ready false");
        var slept = await client.Jobs[sleeping.Id.Value].Result.GetAsync(c => c.QueryParameters.Timeout = 30);
        Check.That(slept.Ready == true, "ready after waiting");
        Check.Equal(1.5, Value(slept.Result), "time.sleep(1.5)'s result");
        Check.Step("GET /jobs/{id}/result?timeout=30 → 200, 1.5");

        var squared = await client.Jobs.PostAsync(new SubmitJobRequest { Function = "math.square", Args = Array(new UntypedInteger(7)) },
            c => c.QueryParameters.Wait = 30);
        Check.That(squared.Ready == true && squared.Successful == true && squared.State == JobView_state.Succeeded, $"math.square(7) is {squared.State}");
        Check.Equal(49, Value(squared.Result), "math.square(7) submitted with wait");
        Check.Step("POST /jobs?wait=30 → succeeded, 49");

        var map = await client.Maps.PostAsync(new SubmitMapRequest
        {
            Function = "math.square",
            Items = Array([.. Enumerable.Range(1, 10).Select(i => new UntypedInteger(i))]),
            Chunksize = 3,
        });
        Check.Equal(10, map.Total, "the map's total");
        var results = await client.Maps[map.Id.Value].Results.GetAsync(c => c.QueryParameters.Timeout = 30);
        Check.That(results.Ready == true, "the map's results are ready");
        // An array of "any value" is itself an untyped node in Kiota's model.
        Check.That(results.Results is UntypedArray, $"the results are an array: {results.Results}");
        var values = ((UntypedArray)results.Results).GetValue().Select(r => Check.Text(Value(r)));
        Check.Equal("1,4,9,16,25,36,49,64,81,100", string.Join(",", values), "the map's results in input order");
        Check.Step("POST /maps, GET /maps/{id}/results → 1 … 100 in order");

        var longJob = await client.Jobs.PostAsync(new SubmitJobRequest { Function = "time.sleep", Args = Array(new UntypedInteger(60)) });
        await client.Jobs[longJob.Id.Value].DeleteAsync();
        var canceled = await client.Jobs[longJob.Id.Value].GetAsync(c => c.QueryParameters.Wait = 30);
        Check.That(canceled.State == JobView_state.Canceled && canceled.Ready == true && canceled.Successful == false, $"the canceled job is {canceled.State}");
        Check.Step("DELETE /jobs/{id} → canceled");

        var failing = await client.Jobs.PostAsync(new SubmitJobRequest { Function = "debug.fail", Args = Array(new UntypedString("boom")) });
        try
        {
            await client.Jobs[failing.Id.Value].Result.GetAsync(c => c.QueryParameters.Timeout = 30);
            throw new WalkthroughFailed("debug.fail returned a result");
        }
        catch (RemoteErrorProblem remote)
        {
            Check.Equal(424, remote.ResponseStatusCode, "the remote error's status");
            Check.That(remote.ExceptionType.EndsWith("DebugFailureException"), $"exceptionType {remote.ExceptionType}");
            Check.Equal("boom", remote.MessageEscaped, "the remote exception's message");
            Check.Equal(failing.Id, remote.JobId, "the problem's jobId");
            Check.Step($"GET /jobs/{{id}}/result → 424, {remote.ExceptionType}: {remote.MessageEscaped}");
        }
    }

    private static UntypedArray Array(params UntypedNode[] items) => new(items);

    /// <summary>A JSON value as Kiota hands "any value" over, unwrapped.</summary>
    private static object Value(UntypedNode node) => node switch
    {
        null or UntypedNull => null,
        UntypedInteger i => i.GetValue(),
        UntypedLong l => l.GetValue(),
        UntypedDouble d => d.GetValue(),
        UntypedFloat f => f.GetValue(),
        UntypedDecimal m => m.GetValue(),
        UntypedBoolean b => b.GetValue(),
        UntypedString s => s.GetValue(),
        _ => node,
    };
}
