using Microsoft.DotNet.Interactive.Formatting;

namespace StepAudio2.Lab.Interactive;

/// <summary>Registers a text/html formatter for every type of <see cref="LabHtml.SupportedTypes"/> (the formatter registry is process-wide).</summary>
public static class LabFormatters
{
    private static int _registered;

    /// <summary>Registers the formatters once per process; later calls do nothing.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        foreach (var type in LabHtml.SupportedTypes)
        {
            Formatter.Register(type, (value, writer) => writer.Write(LabHtml.Fragment(value)), HtmlFormatter.MimeType);
            Formatter.SetPreferredMimeTypesFor(type, HtmlFormatter.MimeType);
        }
    }
}
