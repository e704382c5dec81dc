using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The plotly figure of a tensor: pooling, colour scale by sign, axis titles, a line for one row.</summary>
public sealed class TensorPlotFigureTests
{
    [Fact]
    public void MelFilterBankHeatmapKeepsTheSpecSelfCheckValueInViridis()
    {
        var fig = TensorPlotView.Figure("mel filter bank", SlaneyMelFilterBank.Llm128.ToTensor(), "fb", maxSide: 256, xTitle: "FFT bin", yTitle: "mel band");
        var trace = fig.Data[0]!;
        var z = trace["z"]!.AsArray();
        Assert.Equal(128, z.Count); // [128 bands, 201 bins], not pooled at maxSide 256
        Assert.Equal(201, z[0]!.AsArray().Count);
        Assert.Equal(0.01237, (double)z[0]![1]!, 5); // docs/model.md §2.4: band 0 has its single weight 0.01237399 at bin 1
        Assert.Equal("Viridis", (string)trace["colorscale"]!); // all weights ≥ 0: no diverging scale
        Assert.Null(trace["zmid"]);
        Assert.Equal("FFT bin", fig.Layout["xaxis"]!["title"]!["text"]!.ToString());
        Assert.Equal("mel band", fig.Layout["yaxis"]!["title"]!["text"]!.ToString());
    }

    [Fact]
    public void SignedValuesGetADivergingScaleCentredOnZeroAndPooledCellsAreMeans()
    {
        var data = Enumerable.Range(0, 24).Select(i => (float)(i - 12)).ToArray();
        var fig = TensorPlotView.Figure("s", Tensor.FromArray(data, 2, 3, 4), "s", maxSide: 3);
        var trace = fig.Data[0]!;
        Assert.Equal("RdBu", (string)trace["colorscale"]!);
        Assert.Equal(0, (int)trace["zmid"]!);
        var z = trace["z"]!.AsArray(); // 6 × 4 folded, pooled 2 × 2 → 3 × 2
        Assert.Equal(3, z.Count);
        Assert.Equal(-9.5, (double)z[0]![0]!); // mean(−12, −11, −8, −7)
        Assert.Contains("mean over 2×2 cells", fig.Layout["title"]!["text"]!.ToString());
        Assert.Equal("leading dims / 2", fig.Layout["yaxis"]!["title"]!["text"]!.ToString()); // default titles name the folding
    }

    [Fact]
    public void OneRowIsALine()
    {
        var fig = TensorPlotView.Figure("logits", Tensor.FromArray(new float[] { 3, 2, 1 }, 3), "l", xTitle: "rank", yTitle: "logit");
        Assert.Equal("scatter", (string)fig.Data[0]!["type"]!);
        Assert.Equal(3, fig.Data[0]!["y"]!.AsArray().Count);
        Assert.Equal("rank", fig.Layout["xaxis"]!["title"]!["text"]!.ToString());
    }
}
