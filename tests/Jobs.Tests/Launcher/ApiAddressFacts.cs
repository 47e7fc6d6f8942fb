using Jobs.Launcher;

namespace Jobs.Tests.Launcher;

/// <summary>Where the launcher probes and what it prints for each kind of Api:Urls (Jobs.Launcher's ApiAddress).</summary>
public sealed class ApiAddressFacts
{
    [Theory]
    [InlineData("http://0.0.0.0:5080", true, "http://127.0.0.1:5080", true)]
    [InlineData("http://*:5080", true, "http://127.0.0.1:5080", true)]
    [InlineData("http://+:5080", true, "http://127.0.0.1:5080", true)]
    [InlineData("http://[::]:5080", true, "http://127.0.0.1:5080", true)]
    [InlineData("http://localhost:5080", true, "http://localhost:5080", false)]
    [InlineData("http://10.1.2.3:5080", true, "http://10.1.2.3:5080", false)]
    [InlineData("https://[::1]:5443;http://0.0.0.0:5080", true, "https://[::1]:5443", false)]
    [InlineData("http://127.0.0.1:5080/", false, "http://127.0.0.1:5080", false)]
    // Without API keys the API listens on loopback only, whatever Api:Urls says.
    [InlineData("http://0.0.0.0:5080", false, "http://127.0.0.1:5080", false)]
    [InlineData("http://10.1.2.3:5080", false, "http://127.0.0.1:5080", false)]
    public void A_wildcard_or_refused_host_is_reached_on_loopback(string urls, bool keys, string local, bool allInterfaces)
    {
        var address = ApiAddress.Parse(urls, keys);
        Assert.Equal(local, address.LocalUrl);
        Assert.Equal(allInterfaces, address.AllInterfaces);
    }

    [Fact]
    public void A_url_that_is_not_one_is_refused_naming_the_setting() =>
        Assert.StartsWith("Api:Urls:", Assert.Throws<InvalidOperationException>(() => ApiAddress.Parse("localhost:5080", keys: true)).Message);
}
