using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The vocoder's short STFT pair (<c>HiFTGenerator._stft</c> / <c>_istft</c>: n_fft 16, hop 4, periodic Hann, centred
/// with reflect padding; docs/model.md §7.10 steps 4, 8) as engine ops: at 16 points the transform is a strided Conv1d
/// with the windowed DFT basis as its weight, and the inverse a strided ConvTranspose1d with the windowed inverse basis
/// (the overlap-add) divided by the summed squared window. The bases are built once from the configuration.
/// </summary>
public sealed class HiftStft
{
    private readonly float[] _window;
    private readonly Tensor _analysis, _synthesis;

    public int NFft { get; }
    public int Hop { get; }
    public int Bins => NFft / 2 + 1;

    public HiftStft(int nFft = 16, int hop = 4)
    {
        if (nFft < 2 || nFft % 2 != 0 || hop < 1 || hop > nFft) throw new ArgumentException($"stft: n_fft {nFft} / hop {hop} unsupported");
        NFft = nFft;
        Hop = hop;
        int bins = Bins;
        _window = new float[nFft];
        for (int i = 0; i < nFft; i++) _window[i] = (float)(0.5 - 0.5 * Math.Cos(2 * Math.PI * i / nFft)); // periodic Hann
        // analysis [2·bins, 1, n_fft]: rows k = window·cos(2πki/n), rows bins + k = −window·sin(2πki/n)
        // synthesis [2·bins, 1, n_fft]: the inverse real DFT (each inner bin twice, DC and Nyquist once, their imaginary
        // parts ignored) with the synthesis window and 1/n folded in
        var analysis = new float[2 * bins * nFft];
        var synthesis = new float[2 * bins * nFft];
        for (int k = 0; k < bins; k++)
        {
            double weight = k == 0 || k == bins - 1 ? 1.0 : 2.0;
            for (int i = 0; i < nFft; i++)
            {
                double a = 2 * Math.PI * ((long)k * i % nFft) / nFft;
                double cos = Math.Cos(a), sin = k == 0 || k == bins - 1 ? 0.0 : Math.Sin(a);
                analysis[k * nFft + i] = (float)(_window[i] * cos);
                analysis[(bins + k) * nFft + i] = (float)(-_window[i] * sin);
                synthesis[k * nFft + i] = (float)(weight * cos / nFft * _window[i]);
                synthesis[(bins + k) * nFft + i] = (float)(-weight * sin / nFft * _window[i]);
            }
        }
        _analysis = Tensor.FromArray(analysis, 2 * bins, 1, nFft);
        _synthesis = Tensor.FromArray(synthesis, 2 * bins, 1, nFft);
    }

    /// <summary>x [B, N] → [B, 2·bins, N/hop + 1]: real parts of bins 0..n_fft/2, then imaginary parts (torch.stft, center=True).</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 2) throw new ArgumentException($"stft: input {Tensor.ShapeString(x.Shape)} must be [B, N]");
        int bsz = x.Shape[0], n = x.Shape[1], pad = NFft / 2;
        if (n <= pad) throw new ArgumentException($"stft: {n} samples are too few for reflect padding {pad}");
        var padded = Ops.Pad(x.Reshape(bsz, 1, n), [(0, 0), (0, 0), (pad, pad)], PadMode.Reflect);
        return Ops.Conv1d(padded, _analysis, null, stride: Hop);
    }

    /// <summary>
    /// real, imag [B, bins, F] → [B, hop·(F−1)] (torch.istft, center=True): per-frame inverse real DFT, windowed
    /// overlap-add, divided by the summed squared window, n_fft/2 trimmed at both ends.
    /// </summary>
    public Tensor Inverse(Tensor real, Tensor imag)
    {
        if (real.Rank != 3 || real.Shape[1] != Bins || !imag.Shape.SequenceEqual(real.Shape))
            throw new ArgumentException($"istft: real {Tensor.ShapeString(real.Shape)} / imag {Tensor.ShapeString(imag.Shape)} must be [B, {Bins}, F]");
        int bsz = real.Shape[0], frames = real.Shape[2], pad = NFft / 2;
        int full = NFft + Hop * (frames - 1), len = full - 2 * pad;
        var ola = Ops.ConvTranspose1d(Ops.Concatenate([real, imag], 1), _synthesis, null, stride: Hop); // [B, 1, full]
        // the window envelope depends only on the frame count (configuration, not activations): built on the host
        var env = new double[full];
        for (int f = 0; f < frames; f++)
            for (int i = 0; i < NFft; i++) env[f * Hop + i] += (double)_window[i] * _window[i];
        var envelope = Ops.FromHost(Tensor.FromArray(env.AsSpan(pad, len).ToArray().Select(v => (float)v).ToArray(), len));
        return Ops.Divide(ola.Slice(2, pad, len), envelope).Reshape(bsz, len);
    }
}
