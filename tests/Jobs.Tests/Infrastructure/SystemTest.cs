namespace Jobs.Tests.Infrastructure;

/// <summary>
/// Base of the end-to-end tests: the shared system, its HTTP client, and a reset of every job table before
/// each test (before, not after, so a failed test leaves its data to look at).
/// </summary>
/// <remarks>In the <see cref="SystemCollection"/> unless a test class names the <see cref="FaultSystemCollection"/>
/// (and takes its <see cref="FaultSystemFixture"/>): a class's own [Collection] overrides this one.</remarks>
[Collection(SystemCollection.Name)]
public abstract class SystemTest(SystemFixture system) : IAsyncLifetime
{
    protected SystemFixture Fixture { get; } = system;
    protected HttpClient Http => Fixture.Http;
    protected TestDatabase Database => Fixture.Database;

    public virtual Task InitializeAsync() => Database.ResetAsync();
    public virtual Task DisposeAsync() => Task.CompletedTask;
}
