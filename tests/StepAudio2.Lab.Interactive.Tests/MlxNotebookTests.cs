using StepAudio2.Lab.Engine.Mlx;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// 11-mlx executed in-process on the tiny checkpoint: the audio path traced by MLX itself passes against the PyTorch
/// reference dump at every path, and MLX against our CPU engine passes too. Needs the native MLX libraries
/// (scripts/build-mlx.sh): skipped with the reason when they are not built, except under test.sh (STEPLAB_REQUIRE_MLX=1).
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class MlxNotebookTests
{
    public sealed class MlxFactAttribute : FactAttribute
    {
        public MlxFactAttribute()
        {
            if (!MlxLibrary.IsAvailable && Environment.GetEnvironmentVariable("STEPLAB_REQUIRE_MLX") != "1")
                Skip = "MLX: " + MlxLibrary.UnavailableReason;
        }
    }

    [MlxFact]
    public async Task Mlx_passes_against_the_official_dump_and_against_our_engine()
    {
        var cells = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, "11-mlx.ipynb"));
        foreach (var c in cells) Assert.True(c.Error is null, $"cell '{c.Id}' failed:\n{c.Code}\n{c.Error}");
        var byId = cells.ToDictionary(c => c.Id);
        Assert.Contains("mlx backend, MLX 0.31.2 via mlx-c", byId["mlx-backends"].Html);
        Assert.Contains("PASS: 39 compared, 0 failing", byId["mlx-official"].Html);   // the audio path, as 05-parity's
        Assert.Contains("<table class=\"parity", byId["mlx-official"].Html);
        Assert.Matches("PASS: [1-9][0-9]* compared, 0 failing", byId["mlx-ours"].Html);
    }
}
