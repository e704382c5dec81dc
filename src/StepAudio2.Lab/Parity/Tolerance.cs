using System.Globalization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>
/// A pass criterion with <c>numpy.allclose</c> semantics, the reference being the second argument, plus an optional
/// term scaled by the reference tensor's own magnitude: an element passes iff
/// <c>|a − b| ≤ Atol + Rtol·|b| + Scale·rms(b)</c>; when <see cref="MaxRelL2"/> is set the whole tensor must also
/// satisfy <c>‖a − b‖₂ / ‖b‖₂ ≤ MaxRelL2</c>. NaN equals NaN at the same place, and ±∞ equals the same ±∞.
/// rms(b) is the root mean square of the reference's finite elements below 1e9 in magnitude (attention-mask fills such
/// as −1e10 are sentinels, not magnitudes); a comparison fills it in (<see cref="ReferenceRms"/>) before counting.
/// </summary>
/// <param name="Rtol">Relative tolerance, scaled by the reference element's magnitude.</param>
/// <param name="Atol">Absolute tolerance; what rescues elements whose reference is (near) zero.</param>
/// <param name="MaxRelL2">Optional bound on the whole tensor's relative L2 error.</param>
/// <param name="Name">Tier name for reports ("port", "f32", "bf16", …); null for a custom tolerance.</param>
/// <param name="Scale">Element bound per unit of rms(b): a summation-order error of a correct port is a fraction of
/// the magnitudes summed, i.e. of the tensor's typical size, not of the element's own (which may be near zero).</param>
/// <param name="ReferenceRms">rms(b) once resolved for one tensor (null before).</param>
public sealed record Tolerance(double Rtol, double Atol, double? MaxRelL2 = null, string? Name = null, double Scale = 0, double? ReferenceRms = null)
{
    /// <summary>Reference magnitudes at or above this are sentinels (mask fills), excluded from rms(b).</summary>
    public const double SentinelMagnitude = 1e9;

    /// <summary>
    /// The default for two float32 implementations (ours vs the official code, a GPU vs a CPU, another BLAS): rel-L2
    /// ≤ 1e-5 and every element within 1e-4·|b| + 1e-4·rms(b). Calibrated on reference-data/tiny/crossimpl (float64
    /// then rounded, unfold+matmul convs with split-K linears, another BLAS build, our C# engine, a GPU with TF32 off):
    /// correct ports reach rel-L2 ≤ 1.3e-6 and max|Δ| ≤ 3.5e-5·rms(b) (the log-mel; 7e-6 beyond the rtol part), while
    /// the planted porting bugs (make_crossimpl.py) move their first module by rel-L2 ≥ 4e-4 and ≥ 2e-3·rms(b), and a
    /// 1 % error by rel-L2 1e-2. The strict elementwise tier stays available as <see cref="F32"/>.
    /// </summary>
    public static Tolerance Port { get; } = new(1e-4, 0, 1e-5, "port", Scale: 1e-4);

    /// <summary>
    /// Not a criterion but "pick by dtype" (<see cref="ForDTypes"/>): port for float32/float64 pairs, bf16/f16 when a side
    /// is, exact for integers; the documented floors of known paths (<see cref="ReferenceOverrides.Defaults"/>) then apply.
    /// </summary>
    public static Tolerance Auto { get; } = new(0, 0, null, "auto");

    /// <summary>True for the <see cref="Auto"/> marker.</summary>
    public bool IsAuto => Name == "auto" && Rtol == 0 && Atol == 0 && Scale == 0 && MaxRelL2 is null;

    /// <summary>The absolute part of the element bound for this tensor: Atol + Scale·rms(b).</summary>
    public double ElementAtol => Atol + Scale * (ReferenceRms ?? 0);

    /// <summary>This tolerance resolved for a reference whose rms is <paramref name="rms"/>.</summary>
    public Tolerance Resolve(double rms) => Scale == 0 ? this : this with { ReferenceRms = rms };

    /// <summary>Bit-for-bit: rtol 0, atol 0 (integers, token ids, things that are copied rather than computed).</summary>
    public static Tolerance Exact { get; } = new(0, 0, null, "exact");

    /// <summary>
    /// Two float32 implementations of the same math: summation order and fused multiply-adds move results by a few ulps
    /// (f32 ulp ≈ 1.2e-7 relative), so 1e-5 relative leaves room for accumulation over a deep stack of layers. atol is 1e-5
    /// (torch.testing's float32 default), not 1e-6: an element near zero inherits the absolute error of the O(1) values it
    /// was computed from, and with 1e-6 an independent float64 run of the tiny reference (reference-data/tiny/demo) fails
    /// at a few such elements (|Δ| ≈ 1.3e-6 on a 1.7e-3 key). The rel-L2 bound 1e-5 keeps the tier strict overall.
    /// </summary>
    public static Tolerance F32 { get; } = new(1e-5, 1e-5, 1e-5, "f32");

    /// <summary>
    /// bfloat16 compute or storage on one side: 8 significant bits, unit roundoff 2⁻⁸ ≈ 3.9e-3, so one rounding moves a value by
    /// up to ~4e-3 relative; rtol 1.6e-2 (two bf16 ulps, torch.testing's bf16 default) plus atol 1e-3 for activations near
    /// zero, whose errors scale with the tensor's magnitude rather than their own. The rel-L2 bound 1e-2 allows the
    /// root-mean-square of a few stacked roundings (each ≈ 1.1e-3 rms) but catches a systematic error.
    /// </summary>
    public static Tolerance BF16 { get; } = new(1.6e-2, 1e-3, 1e-2, "bf16");

    /// <summary>
    /// float16 on one side: 11 significant bits, unit roundoff 2⁻¹¹ ≈ 4.9e-4; rtol 1e-3 (two f16 ulps, torch.testing's f16
    /// default), atol 1e-4, rel-L2 1e-3.
    /// </summary>
    public static Tolerance F16 { get; } = new(1e-3, 1e-4, 1e-3, "f16");

    /// <summary>A sanity tier for long pipelines and different algorithms (e.g. FFT vs. DFT): rtol = atol = 1e-3.</summary>
    public static Tolerance Loose { get; } = new(1e-3, 1e-3, null, "loose");

    /// <summary>The named tiers, by name.</summary>
    public static IReadOnlyList<Tolerance> Tiers { get; } = [Exact, Port, F32, BF16, F16, Loose, Auto];

    /// <summary>A custom tolerance from rtol/atol (and optionally a rel-L2 bound and an rms-scaled term); validated.</summary>
    public static Tolerance Of(double rtol, double atol, double? maxRelL2 = null, double scale = 0)
    {
        var t = new Tolerance(rtol, atol, maxRelL2, Scale: scale);
        t.Validate();
        return t;
    }

    /// <summary>
    /// The tier matching the lower-precision of two dtypes (bf16 beats f16 beats f32/f64, which get <see cref="Port"/>);
    /// integers and bools are exact.
    /// </summary>
    public static Tolerance ForDTypes(DType candidate, DType reference)
    {
        if (!candidate.IsFloating() && !reference.IsFloating()) return Exact;
        if (candidate == DType.BF16 || reference == DType.BF16) return BF16;
        if (candidate == DType.F16 || reference == DType.F16) return F16;
        return Port;
    }

    /// <summary>
    /// Parses a tier name (<c>exact</c>, <c>f32</c>, <c>bf16</c>, <c>f16</c>, <c>loose</c>, case-insensitive), a single number
    /// (rtol = atol = that number), or a list <c>rtol=1e-4,atol=1e-5[,rel_l2=1e-4]</c> (separators <c>,</c> or <c>;</c>).
    /// Throws <see cref="FormatException"/> naming the bad part.
    /// </summary>
    public static Tolerance Parse(string text)
    {
        if (TryParse(text, out var tol, out var error)) return tol;
        throw new FormatException(error);
    }

    /// <summary>Non-throwing <see cref="Parse"/>.</summary>
    public static bool TryParse(string? text, out Tolerance tolerance) => TryParse(text, out tolerance, out _);

    private static bool TryParse(string? text, out Tolerance tolerance, out string error)
    {
        tolerance = Exact;
        error = "";
        var s = text?.Trim() ?? "";
        if (s.Length == 0) { error = "empty tolerance"; return false; }
        foreach (var tier in Tiers)
            if (string.Equals(tier.Name, s, StringComparison.OrdinalIgnoreCase)) { tolerance = tier; return true; }

        if (TryNumber(s, out double single))
        {
            if (!(single >= 0)) { error = $"tolerance '{s}' must be a finite non-negative number"; return false; }
            tolerance = new Tolerance(single, single);
            return true;
        }

        double? rtol = null, atol = null, relL2 = null, scale = null;
        foreach (var part in s.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0)
            {
                error = $"tolerance '{s}': expected a tier ({string.Join(", ", Tiers.Select(t => t.Name))}), a number, or key=value pairs; got '{part}'";
                return false;
            }
            var key = part[..eq].Trim().ToLowerInvariant().Replace("-", "_");
            var valueText = part[(eq + 1)..].Trim();
            if (!TryNumber(valueText, out double value) || !(value >= 0))
            {
                error = $"tolerance '{s}': '{valueText}' for {key} is not a finite non-negative number";
                return false;
            }
            switch (key)
            {
                case "rtol": rtol = value; break;
                case "atol": atol = value; break;
                case "rel_l2" or "rell2" or "max_rel_l2": relL2 = value; break;
                case "rms" or "scale": scale = value; break;
                default: error = $"tolerance '{s}': unknown key '{key}' (rtol, atol, rms, rel_l2)"; return false;
            }
        }
        if (rtol is null && atol is null && relL2 is null && scale is null) { error = $"tolerance '{s}' sets nothing"; return false; }
        tolerance = new Tolerance(rtol ?? 0, atol ?? 0, relL2, Scale: scale ?? 0);
        return true;
    }

    private static bool TryNumber(string s, out double value) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    /// <summary>Throws <see cref="ArgumentException"/> when a bound is negative or not finite.</summary>
    public void Validate()
    {
        if (!(Rtol >= 0) || !double.IsFinite(Rtol)) throw new ArgumentException($"rtol {Rtol} must be finite and non-negative");
        if (!(Atol >= 0) || !double.IsFinite(Atol)) throw new ArgumentException($"atol {Atol} must be finite and non-negative");
        if (MaxRelL2 is double r && (!(r >= 0) || !double.IsFinite(r))) throw new ArgumentException($"rel-L2 bound {r} must be finite and non-negative");
        if (!(Scale >= 0) || !double.IsFinite(Scale)) throw new ArgumentException($"rms scale {Scale} must be finite and non-negative");
    }

    /// <summary>The per-element bound for a reference value (rms part included once resolved).</summary>
    public double Bound(double reference) => ElementAtol + Rtol * Math.Abs(reference);

    /// <summary>"f32 (rtol 1e-05, atol 1e-05, rel-L2 ≤ 1e-05)"; with an rms term "port (rtol 0.0001, atol 0, 0.0001·rms(b) [= 3e-05], rel-L2 ≤ 1e-05)".</summary>
    public override string ToString()
    {
        if (IsAuto) return "auto (port for float32, bf16/f16 tiers when a side is, exact for integers; documented floors of known paths)";
        var body = $"rtol {Fmt(Rtol)}, atol {Fmt(Atol)}"
            + (Scale > 0 ? $", {Fmt(Scale)}·rms(b)" + (ReferenceRms is double rms ? $" [= {Fmt(Scale * rms)}]" : "") : "")
            + (MaxRelL2 is double r ? $", rel-L2 ≤ {Fmt(r)}" : "");
        return Name is null ? body : $"{Name} ({body})";
    }

    private static string Fmt(double v) => ParityFormat.Number(v);
}
