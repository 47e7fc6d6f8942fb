// dotnet Walkthroughs.dll <API base URL>: the walkthrough of the client this build was generated for
// (NSwagWalkthrough.cs or KiotaWalkthrough.cs). Exit code 0 when every step held; 1 with the failed step.
try
{
    await Walkthrough.RunAsync(new Uri(args[0]));
    Console.WriteLine("walkthrough passed");
    return 0;
}
catch (WalkthroughFailed e)
{
    Console.Error.WriteLine($"FAIL {e.Message}");
    return 1;
}
