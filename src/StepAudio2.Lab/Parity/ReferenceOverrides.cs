namespace StepAudio2.Lab.Parity;

/// <summary>
/// The documented floors of known official paths: where a correct float32 port cannot meet the default
/// <see cref="Tolerance.Port"/> rule, each with its reason (docs/parity.md). `compare` and `report` apply them by
/// default to float32 comparisons (<see cref="CompareOptions.UseDefaultRules"/>) and name them in the closing line. One
/// place for the CLI, the notebooks and the tests.
/// </summary>
public static class ReferenceOverrides
{
    /// <summary>
    /// The log-mel: two float32 FFT paths differ by ~2.4e-5 near the clamp at max − 8 (values −1…2), so every element is
    /// held to 1e-4 absolute and the tensor to rel-L2 1e-5.
    /// </summary>
    public static ToleranceOverride Mel { get; } = new("input.mel.*", Tolerance.Of(0, 1e-4, 1e-5), "mel floor");

    /// <summary>
    /// Flow: rel-L2 stays at the f32 bound (1e-5), but a few conformer elements differ by up to 3e-5 absolute after the
    /// rel-pos attention's summation order changes, so the element bound is 1e-4.
    /// </summary>
    public static ToleranceOverride Flow { get; } = new("flow*", Tolerance.Of(1e-5, 1e-4, 1e-5), "flow floor");

    /// <summary>
    /// HiFT as a whole chain: the NSF phase accumulates in float32 over every sample (docs/model.md §9), so the chain is held to
    /// 1e-3 (rtol, atol and rel-L2); each module fed the reference's own inputs meets 1e-5 in the unit tests.
    /// </summary>
    public static ToleranceOverride Hift { get; } = new("hift*", Tolerance.Of(1e-3, 1e-3, 1e-3), "hift-chain floor");

    /// <summary>Every documented floor, applied by default to float32 rows of the paths they name.</summary>
    public static IReadOnlyList<ToleranceOverride> Defaults { get; } = [Mel, Flow, Hift];
}
