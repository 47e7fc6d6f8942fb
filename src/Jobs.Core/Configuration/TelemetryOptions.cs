namespace Jobs.Core.Configuration;

/// <summary>
/// Traces (section "Telemetry"). The OTLP exporter is OpenTelemetry's own: it is on when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable is set, and configured by the other <c>OTEL_*</c> variables.
/// </summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>Also write each span to the console (for a look without a collector).</summary>
    public bool ConsoleTraces { get; set; }
}
