using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The tensor heatmap: folding to 2-D, mean pooling over finite values, colour scale choice.</summary>
public sealed class TensorViewTests
{
    [Fact]
    public void GridFoldsLeadingDimsAndMeanPools()
    {
        // [2, 3, 4] → 6 rows × 4 cols; pooled to at most 3 per side → strides 2 × 2
        var data = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();
        var g = TensorGrid.Of("x", Tensor.FromArray(data, 2, 3, 4), maxSide: 3);
        Assert.Equal((3, 2, 2, 2), (g.Rows, g.Cols, g.RowStride, g.ColStride));
        // cell (0,0) = mean of rows 0–1, cols 0–1 = mean(0, 1, 4, 5) = 2.5; cell (2,1) = mean(18, 19, 22, 23) = 20.5
        Assert.Equal(2.5f, g.Values[0]);
        Assert.Equal(20.5f, g.Values[2 * 2 + 1]);
        Assert.Equal([2, 3, 4], g.Shape);
    }

    [Fact]
    public void NonFiniteValuesAreLeftOutOfTheMeanAndAnAllNaNCellIsNaN()
    {
        var g = TensorGrid.Of("v", Tensor.FromArray([1f, float.NaN, float.NaN, float.NaN, 3f, float.PositiveInfinity], 6), maxSide: 3);
        Assert.Equal((1, 3, 1, 2), (g.Rows, g.Cols, g.RowStride, g.ColStride));
        Assert.Equal(1f, g.Values[0]);
        Assert.True(float.IsNaN(g.Values[1]));
        Assert.Equal(3f, g.Values[2]);
    }

    [Fact]
    public void HeatmapOfTheMelFilterBankKeepsTheSpecSelfCheckValueAndIsNotDiverging()
    {
        var bank = SlaneyMelFilterBank.Llm128.ToTensor(); // [128, 201], all ≥ 0
        var fig = TensorView.Heatmap("mel filter bank", bank, "fb", maxSide: 256);
        var z = fig.Data[0]!["z"]!.AsArray();
        Assert.Equal(128, z.Count);
        Assert.Equal(201, z[0]!.AsArray().Count);
        Assert.Equal(0.01237, (double)z[0]![1]!, 5); // spec §2.4: band 0 has its single weight 0.01237399 at bin 1
        Assert.Equal("Viridis", (string)fig.Data[0]!["colorscale"]!);
        Assert.Null(fig.Data[0]!["zmid"]);
    }

    [Fact]
    public void SignedValuesGetADivergingScaleCentredOnZero()
    {
        var fig = TensorView.Heatmap("s", Tensor.FromArray([-2f, 1f, 3f, -4f], 2, 2));
        Assert.Equal("RdBu", (string)fig.Data[0]!["colorscale"]!);
        Assert.Equal(0, (int)fig.Data[0]!["zmid"]!);
        Assert.Contains("s [2, 2]", fig.Layout["title"]!["text"]!.ToString());
    }
}
