using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StepAudio2.Lab.Views;

/// <summary>Small helpers shared by the HTML view builders (escaping, number formatting, safe inline JSON).</summary>
public static class Html
{
    /// <summary>HTML-escapes text for element content and attribute values.</summary>
    public static string Esc(string? s) => WebUtility.HtmlEncode(s ?? "");

    /// <summary>A compact, culture-invariant number (4 significant digits; NaN/Inf spelled out).</summary>
    public static string Num(double v) =>
        double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "Inf" : double.IsNegativeInfinity(v) ? "-Inf" : v.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>A JSON number rounded to <paramref name="digits"/> significant digits; null for NaN/Inf (JSON has none).</summary>
    public static JsonNode? Json(double v, int digits = 4)
    {
        if (!double.IsFinite(v)) return null;
        if (v == 0) return JsonValue.Create(0.0);
        double scale = Math.Pow(10, digits - 1 - (int)Math.Floor(Math.Log10(Math.Abs(v))));
        return JsonValue.Create(Math.Round(v * scale) / scale);
    }

    /// <summary>A JSON array of numbers (see <see cref="Json(double, int)"/>).</summary>
    public static JsonArray Array(IEnumerable<double> values, int digits = 4) => new(values.Select(v => Json(v, digits)).ToArray());

    /// <summary>
    /// Serialises JSON for a <c>&lt;script&gt;</c> element: the default encoder escapes &lt; &gt; &amp; and quotes as \uXXXX,
    /// so no data string can close the script element.
    /// </summary>
    public static string ScriptJson(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
}
