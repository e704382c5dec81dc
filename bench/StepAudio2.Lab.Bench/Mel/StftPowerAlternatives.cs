using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MathNet.Numerics;
using MathNet.Numerics.IntegralTransforms;
using StepAudio2.Lab.Audio.Mel;

namespace StepAudio2.Lab.Bench.Mel;

/// <summary>
/// STFT power through MathNet.Numerics 5.0.0 (<c>Fourier.Forward</c> on Complex32; 400 is not a power of two, so
/// MathNet takes its Bluestein path). Measured against the production mixed-radix kernel by <see cref="MelKernelBench"/>.
/// </summary>
internal sealed class MathNetStftPower(int nFft) : IStftPower
{
    private readonly float[] _window = HannWindow.Periodic(nFft).Select(w => (float)w).ToArray();

    public int NFft => nFft;
    public int BinCount => nFft / 2 + 1;
    public IStftPowerWorker CreateWorker() => new Worker(this);

    private sealed class Worker(MathNetStftPower owner) : IStftPowerWorker
    {
        private readonly Complex32[] _buffer = new Complex32[owner.NFft];

        public void Compute(ReadOnlySpan<float> signal, int start, int hop, int count, Span<double> power)
        {
            int n = owner.NFft, bins = owner.BinCount;
            for (int f = 0; f < count; f++)
            {
                var src = signal.Slice(start + f * hop, n);
                for (int i = 0; i < n; i++) _buffer[i] = new Complex32(src[i] * owner._window[i], 0f);
                Fourier.Forward(_buffer, FourierOptions.NoScaling);
                for (int k = 0; k < bins; k++)
                {
                    double re = _buffer[k].Real, im = _buffer[k].Imaginary;
                    power[f * bins + k] = re * re + im * im;
                }
            }
        }
    }
}

/// <summary>
/// STFT power as a DFT-matrix product in float32: a [2·bins, n_fft] basis of window-folded cos/sin rows times the
/// frames (read in place from the padded signal), register-blocked 4 frames × 1 bin (cos and sin rows) with Vector256 FMA.
/// </summary>
internal sealed class DftMatrixStftPower : IStftPower
{
    private readonly float[] _basis; // row 2k: w[n]·cos(2πkn/N), row 2k+1: w[n]·sin(2πkn/N)

    public DftMatrixStftPower(int nFft)
    {
        if (nFft % Vector256<float>.Count != 0) throw new ArgumentException("n_fft must be a multiple of 8 for this kernel");
        NFft = nFft;
        var window = HannWindow.Periodic(nFft);
        _basis = new float[2 * BinCount * nFft];
        for (int k = 0; k < BinCount; k++)
            for (int n = 0; n < nFft; n++)
            {
                double a = 2.0 * Math.PI * ((long)k * n % nFft) / nFft;
                _basis[(2 * k) * nFft + n] = (float)(window[n] * Math.Cos(a));
                _basis[(2 * k + 1) * nFft + n] = (float)(window[n] * Math.Sin(a));
            }
    }

    public int NFft { get; }
    public int BinCount => NFft / 2 + 1;
    public IStftPowerWorker CreateWorker() => new Worker(this);

    private sealed class Worker(DftMatrixStftPower owner) : IStftPowerWorker
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute(ReadOnlySpan<float> signal, int start, int hop, int count, Span<double> power)
        {
            int n = owner.NFft, bins = owner.BinCount;
            ref float sig = ref MemoryMarshal.GetReference(signal);
            ref float basis = ref MemoryMarshal.GetArrayDataReference(owner._basis);
            int f = 0;
            for (; f + 4 <= count; f += 4)
            {
                ref float x0 = ref Unsafe.Add(ref sig, start + f * hop);
                ref float x1 = ref Unsafe.Add(ref x0, hop);
                ref float x2 = ref Unsafe.Add(ref x1, hop);
                ref float x3 = ref Unsafe.Add(ref x2, hop);
                for (int k = 0; k < bins; k++)
                {
                    ref float c = ref Unsafe.Add(ref basis, 2 * k * n);
                    ref float s = ref Unsafe.Add(ref c, n);
                    Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
                    Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    for (int i = 0; i < n; i += 8)
                    {
                        var vc = Vector256.LoadUnsafe(ref c, (nuint)i);
                        var vs = Vector256.LoadUnsafe(ref s, (nuint)i);
                        var v0 = Vector256.LoadUnsafe(ref x0, (nuint)i);
                        var v1 = Vector256.LoadUnsafe(ref x1, (nuint)i);
                        var v2 = Vector256.LoadUnsafe(ref x2, (nuint)i);
                        var v3 = Vector256.LoadUnsafe(ref x3, (nuint)i);
                        c0 = Vector256.FusedMultiplyAdd(vc, v0, c0); s0 = Vector256.FusedMultiplyAdd(vs, v0, s0);
                        c1 = Vector256.FusedMultiplyAdd(vc, v1, c1); s1 = Vector256.FusedMultiplyAdd(vs, v1, s1);
                        c2 = Vector256.FusedMultiplyAdd(vc, v2, c2); s2 = Vector256.FusedMultiplyAdd(vs, v2, s2);
                        c3 = Vector256.FusedMultiplyAdd(vc, v3, c3); s3 = Vector256.FusedMultiplyAdd(vs, v3, s3);
                    }
                    power[(f + 0) * bins + k] = Power(c0, s0);
                    power[(f + 1) * bins + k] = Power(c1, s1);
                    power[(f + 2) * bins + k] = Power(c2, s2);
                    power[(f + 3) * bins + k] = Power(c3, s3);
                }
            }
            for (; f < count; f++)
            {
                ref float x0 = ref Unsafe.Add(ref sig, start + f * hop);
                for (int k = 0; k < bins; k++)
                {
                    ref float c = ref Unsafe.Add(ref basis, 2 * k * n);
                    ref float s = ref Unsafe.Add(ref c, n);
                    Vector256<float> c0 = default, s0 = default;
                    for (int i = 0; i < n; i += 8)
                    {
                        var v0 = Vector256.LoadUnsafe(ref x0, (nuint)i);
                        c0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref c, (nuint)i), v0, c0);
                        s0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref s, (nuint)i), v0, s0);
                    }
                    power[f * bins + k] = Power(c0, s0);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static double Power(Vector256<float> c, Vector256<float> s)
        {
            double re = Vector256.Sum(c), im = Vector256.Sum(s);
            return re * re + im * im;
        }
    }
}
