using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The vocoder's short STFT pair (n_fft 16, hop 4, periodic Hann, centred with reflect padding; docs/model.md §7.10 steps 4, 8)
/// as a direct DFT in double: at 16 points a table beats an FFT and keeps the numbers close to torch's.
/// </summary>
public sealed class HiftStft
{
    private readonly double[] _cos, _sin;
    private readonly float[] _window;

    public int NFft { get; }
    public int Hop { get; }
    public int Bins => NFft / 2 + 1;

    public HiftStft(int nFft = 16, int hop = 4)
    {
        if (nFft < 2 || nFft % 2 != 0 || hop < 1 || hop > nFft) throw new ArgumentException($"stft: n_fft {nFft} / hop {hop} unsupported");
        NFft = nFft;
        Hop = hop;
        _window = new float[nFft];
        for (int i = 0; i < nFft; i++) _window[i] = (float)(0.5 - 0.5 * Math.Cos(2 * Math.PI * i / nFft)); // periodic Hann
        _cos = new double[nFft * nFft];
        _sin = new double[nFft * nFft];
        for (int k = 0; k < nFft; k++)
            for (int i = 0; i < nFft; i++)
            {
                double a = 2 * Math.PI * ((long)k * i % nFft) / nFft;
                _cos[k * nFft + i] = Math.Cos(a);
                _sin[k * nFft + i] = Math.Sin(a);
            }
    }

    /// <summary>x [B, N] → [B, 2·bins, N/hop + 1]: real parts of bins 0..n_fft/2, then imaginary parts (torch.stft, center=True).</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 2) throw new ArgumentException($"stft: input {Tensor.ShapeString(x.Shape)} must be [B, N]");
        int bsz = x.Shape[0], n = x.Shape[1], pad = NFft / 2, bins = Bins;
        if (n <= pad) throw new ArgumentException($"stft: {n} samples are too few for reflect padding {pad}");
        int frames = n / Hop + 1;
        var src = x.ToFloatArray();
        var outp = new float[(long)bsz * 2 * bins * frames];
        var padded = new double[n + 2 * pad];
        var seg = new double[NFft];
        for (int b = 0; b < bsz; b++)
        {
            for (int i = 0; i < padded.Length; i++)
            {
                int j = i - pad;
                if (j < 0) j = -j;
                else if (j >= n) j = 2 * (n - 1) - j;
                padded[i] = src[(long)b * n + j];
            }
            long o = (long)b * 2 * bins * frames;
            for (int f = 0; f < frames; f++)
            {
                for (int i = 0; i < NFft; i++) seg[i] = padded[f * Hop + i] * _window[i];
                for (int k = 0; k < bins; k++)
                {
                    double re = 0, im = 0;
                    for (int i = 0; i < NFft; i++) { re += seg[i] * _cos[k * NFft + i]; im -= seg[i] * _sin[k * NFft + i]; }
                    outp[o + (long)k * frames + f] = (float)re;
                    outp[o + (long)(bins + k) * frames + f] = (float)im;
                }
            }
        }
        return Tensor.FromArray(outp, bsz, 2 * bins, frames);
    }

    /// <summary>
    /// real, imag [B, bins, F] → [B, hop·(F−1)] (torch.istft, center=True): per-frame inverse real DFT (imaginary parts of
    /// DC and Nyquist ignored), windowed overlap-add, divided by the summed squared window, n_fft/2 trimmed at both ends.
    /// </summary>
    public float[] Inverse(float[] real, float[] imag, int bsz, int frames)
    {
        int bins = Bins, pad = NFft / 2;
        int full = NFft + Hop * (frames - 1), len = full - 2 * pad;
        var ola = new double[full];
        var env = new double[full];
        for (int f = 0; f < frames; f++)
            for (int i = 0; i < NFft; i++) env[f * Hop + i] += (double)_window[i] * _window[i];
        var outp = new float[(long)bsz * len];
        for (int b = 0; b < bsz; b++)
        {
            Array.Clear(ola);
            long o = (long)b * bins * frames;
            for (int f = 0; f < frames; f++)
                for (int i = 0; i < NFft; i++)
                {
                    double acc = real[o + f];
                    acc += (i % 2 == 0 ? 1.0 : -1.0) * real[o + (long)(bins - 1) * frames + f];
                    for (int k = 1; k < bins - 1; k++)
                    {
                        double re = real[o + (long)k * frames + f], im = imag[o + (long)k * frames + f];
                        acc += 2 * (re * _cos[k * NFft + i] - im * _sin[k * NFft + i]);
                    }
                    ola[f * Hop + i] += acc / NFft * _window[i];
                }
            for (int i = 0; i < len; i++) outp[(long)b * len + i] = (float)(ola[pad + i] / env[pad + i]);
        }
        return outp;
    }
}
