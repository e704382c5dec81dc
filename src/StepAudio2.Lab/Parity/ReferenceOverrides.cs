namespace StepAudio2.Lab.Parity;

/// <summary>
/// The documented per-path tolerances where a float32 port cannot meet the plain f32 tier against the Python reference,
/// each with its reason. One place for the CLI report, the notebooks and the tests.
/// </summary>
public static class ReferenceOverrides
{
    /// <summary>The mel of two float32 FFT paths differs by ~2e-5 near the clamp; 1e-4 is its documented acceptance bound.</summary>
    public static ToleranceOverride Mel { get; } = new("input.mel.*", Tolerance.Of(0, 1e-4));

    /// <summary>
    /// Flow: rel-L2 stays at the f32 bound (1e-5), but a few conformer elements differ by up to 3e-5 absolute after the
    /// rel-pos attention's summation order changes, so the element bound is 1e-4.
    /// </summary>
    public static ToleranceOverride Flow { get; } = new("flow*", Tolerance.Of(1e-5, 1e-4, 1e-5));

    /// <summary>
    /// HiFT as a whole chain: the NSF phase accumulates in float32 over every sample (spec §9), so the chain is held to
    /// 1e-3 (rtol, atol and rel-L2); each module fed the reference's own inputs meets 1e-5 in the unit tests.
    /// </summary>
    public static ToleranceOverride Hift { get; } = new("hift*", Tolerance.Of(1e-3, 1e-3, 1e-3));

    /// <summary>What a token2wav trace (flow + HiFT) is compared with.</summary>
    public static IReadOnlyList<ToleranceOverride> Token2Wav { get; } = [Flow, Hift];
}
