using System.Globalization;

namespace StepAudio2.Lab.Parity;

/// <summary>Number formatting shared by hints and reports: short, invariant, scientific for very small or large magnitudes.</summary>
public static class ParityFormat
{
    /// <summary>"0", "0.1235", "1.23e-05", "NaN", "inf", "-inf".</summary>
    public static string Number(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsPositiveInfinity(v)) return "inf";
        if (double.IsNegativeInfinity(v)) return "-inf";
        if (v == 0) return "0";
        double a = Math.Abs(v);
        return a >= 1e-3 && a < 1e5
            ? v.ToString("G4", CultureInfo.InvariantCulture)
            : v.ToString("0.##e+00", CultureInfo.InvariantCulture);
    }

    /// <summary>Cosine similarity with six decimals ("0.999998"): G4 would round near-misses to "1".</summary>
    public static string Cosine(double v) => double.IsFinite(v) ? v.ToString("0.000000", CultureInfo.InvariantCulture) : Number(v);
}
