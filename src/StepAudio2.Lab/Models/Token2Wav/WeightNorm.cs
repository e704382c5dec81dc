using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// Loads weight-normed parameters folded into one effective weight, w = g · v/‖v‖ with the norm over every axis but
/// axis 0 (torch's weight_norm with dim 0; for ConvTranspose1d axis 0 is the input-channel axis). Accepts the new-style
/// <c>&lt;m&gt;.parametrizations.weight.original0/1</c> keys, the legacy <c>&lt;m&gt;.weight_g/_v</c> keys, and a plain
/// <c>&lt;m&gt;.weight</c> (weight norm already removed). No epsilon on ‖v‖, as the official code (docs/model.md §10).
/// </summary>
public static class WeightNorm
{
    /// <summary>The effective weight of module <paramref name="module"/>; <paramref name="shape"/> entries of −1 are inferred.</summary>
    public static Tensor Load(Weights w, string module, params int[] shape)
    {
        string newG = module + ".parametrizations.weight.original0", newV = module + ".parametrizations.weight.original1";
        string oldG = module + ".weight_g", oldV = module + ".weight_v", plain = module + ".weight";
        if (w.Has(plain) && !w.Has(oldV) && !w.Has(newV))
            return Owned(Checked(w, plain, w.GetAnyShape(plain, shape.Length), shape));
        bool newStyle = w.Has(newG) || w.Has(newV);
        string gKey = newStyle ? newG : oldG, vKey = newStyle ? newV : oldV;
        var v = Checked(w, vKey, w.GetAnyShape(vKey, shape.Length), shape);
        var gShape = new int[shape.Length];
        Array.Fill(gShape, 1);
        gShape[0] = v.Shape[0];
        var g = w.Get(gKey, gShape);
        return Fold(g.ToFloatArray(), v.ToFloatArray(), v.Shape);
    }

    /// <summary>A plain (not weight-normed) parameter, shape asserted, copied to managed float32 so it outlives the file.</summary>
    public static Tensor Plain(Weights w, string key, params int[] shape) => Owned(w.Get(key, shape));

    private static Tensor Owned(Tensor t) => Tensor.FromArray(t.ToFloatArray(), t.Shape);

    /// <summary>g [n0] and v [n0, …] → g·v/‖v‖ per axis-0 slice (norm summed in double, then float math as torch).</summary>
    public static Tensor Fold(float[] g, float[] v, int[] shape)
    {
        int n0 = shape[0];
        int inner = v.Length / Math.Max(n0, 1);
        var outp = new float[v.Length];
        for (int o = 0; o < n0; o++)
        {
            double ss = 0;
            for (int i = 0; i < inner; i++) { double x = v[o * inner + i]; ss += x * x; }
            float scale = g[o] / (float)Math.Sqrt(ss);
            for (int i = 0; i < inner; i++) outp[o * inner + i] = v[o * inner + i] * scale;
        }
        return Tensor.FromArray(outp, shape);
    }

    private static Tensor Checked(Weights w, string key, Tensor t, int[] shape)
    {
        for (int i = 0; i < shape.Length; i++)
            if (shape[i] >= 0 && t.Shape[i] != shape[i])
                throw new WeightException(w.Source.Path,
                    $"shape {Tensor.ShapeString(t.Shape)} does not match the expected {ExpectedString(shape)}", key);
        return t;
    }

    internal static string ExpectedString(int[] shape) => "[" + string.Join(", ", shape.Select(d => d < 0 ? "?" : d.ToString())) + "]";
}
