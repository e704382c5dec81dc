using StepAudio2.Lab.Engine.Mlx;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// Why the MLX tests cannot run here, or null. They skip, visibly, only while the native libraries are not built
/// (scripts/build-mlx.sh); test.sh builds them and sets STEPLAB_REQUIRE_MLX=1, so there a missing library fails the
/// tests instead of skipping them.
/// </summary>
internal static class MlxAvailability
{
    public static string? SkipReason =>
        MlxLibrary.IsAvailable || Environment.GetEnvironmentVariable("STEPLAB_REQUIRE_MLX") == "1"
            ? null
            : "MLX: " + MlxLibrary.UnavailableReason;
}

/// <summary>A fact that needs the native MLX libraries (skipped with the reason when they are not built).</summary>
public sealed class MlxFactAttribute : FactAttribute
{
    public MlxFactAttribute()
    {
        if (MlxAvailability.SkipReason is { } why) Skip = why;
    }
}

/// <summary>A theory that needs the native MLX libraries (skipped with the reason when they are not built).</summary>
public sealed class MlxTheoryAttribute : TheoryAttribute
{
    public MlxTheoryAttribute()
    {
        if (MlxAvailability.SkipReason is { } why) Skip = why;
    }
}
