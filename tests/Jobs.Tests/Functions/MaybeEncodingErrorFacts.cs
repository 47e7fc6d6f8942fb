using Jobs.Core.Functions;


namespace Jobs.Tests.Functions;

/// <summary>What PostgreSQL's jsonb refuses is found before a result is written, so the job ends failed instead of never.</summary>
public sealed class MaybeEncodingErrorFacts
{
    [Theory]
    [InlineData("\"a\\u0000b\"", "U+0000")]
    [InlineData("{\"k\\u0000\": 1}", "U+0000")]
    [InlineData("[\"\\ud800\"]", "surrogate")]
    [InlineData("\"\\udc00x\"", "surrogate")]
    [InlineData("1e200000", "numeric range")]
    [InlineData("-12345678901234567890e131060", "numeric range")]
    [InlineData("1.5e-20000", "fractional")]
    [InlineData("1e131072", "numeric range")]
    [InlineData("1e-16384", "fractional")]
    [InlineData("NaN", "not valid JSON")]
    public void Values_jsonb_cannot_store_are_named(string json, string named) =>
        Assert.Contains(named, MaybeEncodingError.Problem(json));

    [Theory]
    [InlineData("null")]
    [InlineData("\"plain text, é, 😀\"")]
    [InlineData("\"\\ud83d\\ude00 escaped pair\"")]
    [InlineData("{\"nested\": [1, 2.5, -3e10, \"\\n\\t\"]}")]
    [InlineData("1e400")]
    [InlineData("1e131071")]
    [InlineData("1e-16383")]
    [InlineData("123456789012345678901234567890")]
    public void Values_jsonb_stores_pass(string json) => Assert.Null(MaybeEncodingError.Problem(json));

    [Fact]
    public void Text_for_an_error_message_is_made_storable() =>
        Assert.Equal("a\uFFFDb\uFFFD😀", MaybeEncodingError.Carryable("a\0b\ud800😀"));
}
