using System.Net;
using Jobs.Tests.Infrastructure;

namespace Jobs.Tests.Health;

public sealed class HealthTests(SystemFixture system) : SystemTest(system)
{
    [Fact]
    public async Task Health_endpoints_report_live_and_ready()
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/health/live")).StatusCode);
        var ready = await Http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }
}
