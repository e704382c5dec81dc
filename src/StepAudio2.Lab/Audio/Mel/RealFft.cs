using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256<double>;

namespace StepAudio2.Lab.Audio.Mel;

/// <summary>
/// Forward DFT of real sequences of even length N (X[k] = Σ x[n]·e^{−2πikn/N}, k = 0…N/2, no scaling, as
/// <c>torch.stft</c>'s one-sided output): an N/2-point mixed-radix Stockham FFT of the even/odd samples packed as
/// complex numbers, then the real-split step. Float64 throughout. Any even N works (radix 4, 2, 3, 5 butterflies,
/// direct DFT for other prime factors): N = 400 (LLM mel, 200 = 4·2·5·5) and N = 1920 (flow mel, 960 = 4·4·4·3·5).
/// Transforms <see cref="Lanes"/> independent frames at once, one per SIMD lane: the butterflies are the scalar
/// ones on <c>Vector256&lt;double&gt;</c>, so each lane's result is bit-identical to a scalar run (no FMA contraction)
/// and the STFT gets SIMD speed without a vectorised butterfly design.
/// One instance is immutable and shared across threads; each thread brings its own <see cref="Workspace"/>.
/// Hot methods skip tiered JIT (AggressiveOptimization): a CLI or notebook computes one mel once, and tier-0 code
/// would make that single call ~10× slower.
/// </summary>
internal sealed class RealFft
{
    /// <summary>Frames transformed per call (lanes of <c>Vector256&lt;double&gt;</c>: 4 on every platform).</summary>
    public static int Lanes => V.Count;

    private readonly int _n, _m;
    private readonly Stage[] _stages;
    private readonly double[] _splitCos, _splitSin; // e^{−2πik/N}, k = 0…M

    public RealFft(int n)
    {
        if (n < 2 || n % 2 != 0) throw new ArgumentOutOfRangeException(nameof(n), n, "real FFT length must be even and ≥ 2");
        _n = n;
        _m = n / 2;
        _stages = BuildStages(_m);
        _splitCos = new double[_m + 1];
        _splitSin = new double[_m + 1];
        for (int k = 0; k <= _m; k++)
        {
            double a = -2.0 * Math.PI * k / n;
            _splitCos[k] = Math.Cos(a);
            _splitSin[k] = Math.Sin(a);
        }
    }

    public int Length => _n;
    public int BinCount => _m + 1;

    /// <summary>Per-thread scratch: two ping-pong complex buffers of N/2 points, and the lane-packed input.</summary>
    public sealed class Workspace(int n)
    {
        internal readonly V[] Ar = new V[n / 2], Ai = new V[n / 2], Br = new V[n / 2], Bi = new V[n / 2];
        /// <summary>Input of the lane-batched <c>PowerSpectrum</c>: sample t of frame j at <c>Input[t][j]</c>.</summary>
        public readonly V[] Input = new V[n];
    }

    public Workspace CreateWorkspace() => new(_n);

    /// <summary>
    /// |X[k]|² of the <see cref="Lanes"/> frames held in <c>ws.Input</c> (lane j = frame j), written to
    /// <c>power[j·BinCount + k]</c> for lanes j &lt; <paramref name="lanesUsed"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void PowerSpectrum(Span<double> power, Workspace ws, int lanesUsed)
    {
        Transform(ws, out var zr, out var zi);
        int m = _m, bins = m + 1;
        if (power.Length < lanesUsed * bins) throw new ArgumentException($"power needs {lanesUsed * bins} values", nameof(power));
        // Real split: with Z = FFT_M(x[2n] + i·x[2n+1]), E[k] = (Z[k] + conj Z[M−k])/2 is the DFT of the even
        // samples, O[k] = (Z[k] − conj Z[M−k])/(2i) that of the odd ones, and X[k] = E[k] + e^{−2πik/N}·O[k].
        for (int k = 0; k <= m; k++)
        {
            Split(zr, zi, k, out var xr, out var xi);
            var p = xr * xr + xi * xi;
            for (int j = 0; j < lanesUsed; j++) power[j * bins + k] = p.GetElement(j);
        }
    }

    /// <summary>Complex one-sided spectrum X[k], k = 0…N/2, of one frame (tests, and later stages that need the phase).</summary>
    public void Forward(ReadOnlySpan<double> input, Span<double> re, Span<double> im, Workspace ws)
    {
        LoadSingle(input, ws);
        Transform(ws, out var zr, out var zi);
        for (int k = 0; k <= _m; k++)
        {
            Split(zr, zi, k, out var xr, out var xi);
            re[k] = xr.GetElement(0);
            im[k] = xi.GetElement(0);
        }
    }

    /// <summary>|X[k]|² of one frame.</summary>
    public void PowerSpectrum(ReadOnlySpan<double> input, Span<double> power, Workspace ws)
    {
        LoadSingle(input, ws);
        PowerSpectrum(power, ws, 1);
    }

    private void LoadSingle(ReadOnlySpan<double> input, Workspace ws)
    {
        if (input.Length != _n) throw new ArgumentException($"expected {_n} samples, got {input.Length}", nameof(input));
        for (int t = 0; t < _n; t++) ws.Input[t] = Vector256.Create(input[t]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Split(V[] zr, V[] zi, int k, out V xr, out V xi)
    {
        int m = _m;
        if (k == 0 || k == m)
        {
            xr = k == 0 ? zr[0] + zi[0] : zr[0] - zi[0];
            xi = V.Zero;
            return;
        }
        V ar = zr[k], ai = zi[k], br = zr[m - k], bi = -zi[m - k];
        V er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
        V or = 0.5 * (ai - bi), oi = -0.5 * (ar - br); // (Z[k] − conj Z[M−k])/(2i)
        double c = _splitCos[k], s = _splitSin[k];
        xr = er + (or * c - oi * s);
        xi = ei + (or * s + oi * c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Transform(Workspace ws, out V[] resultRe, out V[] resultIm)
    {
        V[] xr = ws.Ar, xi = ws.Ai, yr = ws.Br, yi = ws.Bi;
        var input = ws.Input;
        for (int i = 0; i < _m; i++)
        {
            xr[i] = input[2 * i];
            xi[i] = input[2 * i + 1];
        }
        foreach (var stage in _stages)
        {
            stage.Run(xr, xi, yr, yi);
            (xr, yr) = (yr, xr);
            (xi, yi) = (yi, xi);
        }
        resultRe = xr;
        resultIm = xi;
    }

    private static Stage[] BuildStages(int m)
    {
        var factors = new List<int>();
        int rest = m;
        while (rest % 4 == 0) { factors.Add(4); rest /= 4; }
        while (rest % 2 == 0) { factors.Add(2); rest /= 2; }
        for (int p = 3; rest > 1; p += 2)
            while (rest % p == 0) { factors.Add(p); rest /= p; }
        var stages = new Stage[factors.Count];
        int len = m, stride = 1;
        for (int i = 0; i < factors.Count; i++)
        {
            stages[i] = new Stage(factors[i], len, stride);
            len /= factors[i];
            stride *= factors[i];
        }
        return stages;
    }

    /// <summary>
    /// One decimation-in-frequency Stockham pass of radix p over sub-sequences of length <c>len</c> at stride <c>s</c>:
    /// y[q + s(p·j + k)] = (Σ_r x[q + s(j + r·len/p)]·ω_p^{rk})·ω_len^{jk}. Output lands in natural order after the
    /// last pass, so no bit reversal is needed.
    /// </summary>
    private sealed class Stage
    {
        private readonly int _p, _len, _s, _sub;
        private readonly double[] _twr, _twi; // ω_len^{jk}: [j·(p−1) + (k−1)]
        private readonly double[] _rootR = [], _rootI = []; // ω_p^{e}, generic radix only

        public Stage(int p, int len, int s)
        {
            _p = p; _len = len; _s = s; _sub = len / p;
            _twr = new double[_sub * (p - 1)];
            _twi = new double[_sub * (p - 1)];
            for (int j = 0; j < _sub; j++)
                for (int k = 1; k < p; k++)
                {
                    double a = -2.0 * Math.PI * ((long)j * k % len) / len;
                    _twr[j * (p - 1) + k - 1] = Math.Cos(a);
                    _twi[j * (p - 1) + k - 1] = Math.Sin(a);
                }
            if (p is not (2 or 3 or 4 or 5))
            {
                _rootR = new double[p];
                _rootI = new double[p];
                for (int e = 0; e < p; e++)
                {
                    _rootR[e] = Math.Cos(-2.0 * Math.PI * e / p);
                    _rootI[e] = Math.Sin(-2.0 * Math.PI * e / p);
                }
            }
        }

        // The radix kernels index without bounds checks (Unsafe.Add): every index is q + s·(…) < s·len = M by
        // construction of the plan, and the buffers are the workspace's M-point arrays (checked here once).
        public void Run(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            int m = _s * _len;
            if (xr.Length < m || xi.Length < m || yr.Length < m || yi.Length < m) throw new ArgumentException("FFT buffers shorter than the plan");
            switch (_p)
            {
                case 2: Radix2(xr, xi, yr, yi); break;
                case 3: Radix3(xr, xi, yr, yi); break;
                case 4: Radix4(xr, xi, yr, yi); break;
                case 5: Radix5(xr, xi, yr, yi); break;
                default: Generic(xr, xi, yr, yi); break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Radix2(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            ref V Rxr = ref MemoryMarshal.GetArrayDataReference(xr), Rxi = ref MemoryMarshal.GetArrayDataReference(xi);
            ref V Ryr = ref MemoryMarshal.GetArrayDataReference(yr), Ryi = ref MemoryMarshal.GetArrayDataReference(yi);
            int s = _s, sub = _sub;
            for (int j = 0; j < sub; j++)
            {
                double w1r = _twr[j], w1i = _twi[j];
                int i0 = s * j, i1 = s * (j + sub), o0 = s * 2 * j, o1 = o0 + s;
                for (int q = 0; q < s; q++)
                {
                    V ar = Unsafe.Add(ref Rxr, i0 + q), ai = Unsafe.Add(ref Rxi, i0 + q), br = Unsafe.Add(ref Rxr, i1 + q), bi = Unsafe.Add(ref Rxi, i1 + q);
                    Unsafe.Add(ref Ryr, o0 + q) = ar + br; Unsafe.Add(ref Ryi, o0 + q) = ai + bi;
                    V dr = ar - br, di = ai - bi;
                    Unsafe.Add(ref Ryr, o1 + q) = dr * w1r - di * w1i; Unsafe.Add(ref Ryi, o1 + q) = dr * w1i + di * w1r;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Radix3(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            ref V Rxr = ref MemoryMarshal.GetArrayDataReference(xr), Rxi = ref MemoryMarshal.GetArrayDataReference(xi);
            ref V Ryr = ref MemoryMarshal.GetArrayDataReference(yr), Ryi = ref MemoryMarshal.GetArrayDataReference(yi);
            const double S = 0.86602540378443864676; // sin(2π/3)
            int s = _s, sub = _sub;
            for (int j = 0; j < sub; j++)
            {
                int t = 2 * j;
                double w1r = _twr[t], w1i = _twi[t], w2r = _twr[t + 1], w2i = _twi[t + 1];
                int i0 = s * j, i1 = s * (j + sub), i2 = s * (j + 2 * sub), o0 = s * 3 * j;
                for (int q = 0; q < s; q++)
                {
                    V a0r = Unsafe.Add(ref Rxr, i0 + q), a0i = Unsafe.Add(ref Rxi, i0 + q), a1r = Unsafe.Add(ref Rxr, i1 + q), a1i = Unsafe.Add(ref Rxi, i1 + q), a2r = Unsafe.Add(ref Rxr, i2 + q), a2i = Unsafe.Add(ref Rxi, i2 + q);
                    V tr = a1r + a2r, ti = a1i + a2i;
                    V mr = a0r - 0.5 * tr, mi = a0i - 0.5 * ti;
                    // −i·S·(a1 − a2)
                    V nr = S * (a1i - a2i), ni = -S * (a1r - a2r);
                    Unsafe.Add(ref Ryr, o0 + q) = a0r + tr; Unsafe.Add(ref Ryi, o0 + q) = a0i + ti;
                    V b1r = mr + nr, b1i = mi + ni, b2r = mr - nr, b2i = mi - ni;
                    Unsafe.Add(ref Ryr, o0 + s + q) = b1r * w1r - b1i * w1i; Unsafe.Add(ref Ryi, o0 + s + q) = b1r * w1i + b1i * w1r;
                    Unsafe.Add(ref Ryr, o0 + 2 * s + q) = b2r * w2r - b2i * w2i; Unsafe.Add(ref Ryi, o0 + 2 * s + q) = b2r * w2i + b2i * w2r;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Radix4(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            ref V Rxr = ref MemoryMarshal.GetArrayDataReference(xr), Rxi = ref MemoryMarshal.GetArrayDataReference(xi);
            ref V Ryr = ref MemoryMarshal.GetArrayDataReference(yr), Ryi = ref MemoryMarshal.GetArrayDataReference(yi);
            int s = _s, sub = _sub;
            for (int j = 0; j < sub; j++)
            {
                int t = 3 * j;
                double w1r = _twr[t], w1i = _twi[t], w2r = _twr[t + 1], w2i = _twi[t + 1], w3r = _twr[t + 2], w3i = _twi[t + 2];
                int i0 = s * j, i1 = s * (j + sub), i2 = s * (j + 2 * sub), i3 = s * (j + 3 * sub), o0 = s * 4 * j;
                for (int q = 0; q < s; q++)
                {
                    V a0r = Unsafe.Add(ref Rxr, i0 + q), a0i = Unsafe.Add(ref Rxi, i0 + q), a1r = Unsafe.Add(ref Rxr, i1 + q), a1i = Unsafe.Add(ref Rxi, i1 + q);
                    V a2r = Unsafe.Add(ref Rxr, i2 + q), a2i = Unsafe.Add(ref Rxi, i2 + q), a3r = Unsafe.Add(ref Rxr, i3 + q), a3i = Unsafe.Add(ref Rxi, i3 + q);
                    V t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
                    V t2r = a1r + a3r, t2i = a1i + a3i, t3r = a1r - a3r, t3i = a1i - a3i;
                    Unsafe.Add(ref Ryr, o0 + q) = t0r + t2r; Unsafe.Add(ref Ryi, o0 + q) = t0i + t2i;
                    V b1r = t1r + t3i, b1i = t1i - t3r; // t1 − i·t3
                    V b2r = t0r - t2r, b2i = t0i - t2i;
                    V b3r = t1r - t3i, b3i = t1i + t3r; // t1 + i·t3
                    Unsafe.Add(ref Ryr, o0 + s + q) = b1r * w1r - b1i * w1i; Unsafe.Add(ref Ryi, o0 + s + q) = b1r * w1i + b1i * w1r;
                    Unsafe.Add(ref Ryr, o0 + 2 * s + q) = b2r * w2r - b2i * w2i; Unsafe.Add(ref Ryi, o0 + 2 * s + q) = b2r * w2i + b2i * w2r;
                    Unsafe.Add(ref Ryr, o0 + 3 * s + q) = b3r * w3r - b3i * w3i; Unsafe.Add(ref Ryi, o0 + 3 * s + q) = b3r * w3i + b3i * w3r;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Radix5(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            ref V Rxr = ref MemoryMarshal.GetArrayDataReference(xr), Rxi = ref MemoryMarshal.GetArrayDataReference(xi);
            ref V Ryr = ref MemoryMarshal.GetArrayDataReference(yr), Ryi = ref MemoryMarshal.GetArrayDataReference(yi);
            const double C1 = 0.30901699437494742410, C2 = -0.80901699437494742410; // cos(2π/5), cos(4π/5)
            const double S1 = 0.95105651629515357212, S2 = 0.58778525229247312917; // sin(2π/5), sin(4π/5)
            int s = _s, sub = _sub;
            for (int j = 0; j < sub; j++)
            {
                int t = 4 * j;
                double w1r = _twr[t], w1i = _twi[t], w2r = _twr[t + 1], w2i = _twi[t + 1];
                double w3r = _twr[t + 2], w3i = _twi[t + 2], w4r = _twr[t + 3], w4i = _twi[t + 3];
                int i0 = s * j, o0 = s * 5 * j;
                for (int q = 0; q < s; q++)
                {
                    int i = i0 + q;
                    V a0r = Unsafe.Add(ref Rxr, i), a0i = Unsafe.Add(ref Rxi, i);
                    V a1r = Unsafe.Add(ref Rxr, i + s * sub), a1i = Unsafe.Add(ref Rxi, i + s * sub);
                    V a2r = Unsafe.Add(ref Rxr, i + 2 * s * sub), a2i = Unsafe.Add(ref Rxi, i + 2 * s * sub);
                    V a3r = Unsafe.Add(ref Rxr, i + 3 * s * sub), a3i = Unsafe.Add(ref Rxi, i + 3 * s * sub);
                    V a4r = Unsafe.Add(ref Rxr, i + 4 * s * sub), a4i = Unsafe.Add(ref Rxi, i + 4 * s * sub);
                    V p1r = a1r + a4r, p1i = a1i + a4i, m1r = a1r - a4r, m1i = a1i - a4i;
                    V p2r = a2r + a3r, p2i = a2i + a3i, m2r = a2r - a3r, m2i = a2i - a3i;
                    V c1r = a0r + C1 * p1r + C2 * p2r, c1i = a0i + C1 * p1i + C2 * p2i;
                    V c2r = a0r + C2 * p1r + C1 * p2r, c2i = a0i + C2 * p1i + C1 * p2i;
                    // u = S1·m1 + S2·m2, v = S2·m1 − S1·m2; b1 = c1 − i·u, b4 = c1 + i·u, b2 = c2 − i·v, b3 = c2 + i·v
                    V ur = S1 * m1r + S2 * m2r, ui = S1 * m1i + S2 * m2i;
                    V vr = S2 * m1r - S1 * m2r, vi = S2 * m1i - S1 * m2i;
                    V b1r = c1r + ui, b1i = c1i - ur, b4r = c1r - ui, b4i = c1i + ur;
                    V b2r = c2r + vi, b2i = c2i - vr, b3r = c2r - vi, b3i = c2i + vr;
                    int o = o0 + q;
                    Unsafe.Add(ref Ryr, o) = a0r + p1r + p2r; Unsafe.Add(ref Ryi, o) = a0i + p1i + p2i;
                    Unsafe.Add(ref Ryr, o + s) = b1r * w1r - b1i * w1i; Unsafe.Add(ref Ryi, o + s) = b1r * w1i + b1i * w1r;
                    Unsafe.Add(ref Ryr, o + 2 * s) = b2r * w2r - b2i * w2i; Unsafe.Add(ref Ryi, o + 2 * s) = b2r * w2i + b2i * w2r;
                    Unsafe.Add(ref Ryr, o + 3 * s) = b3r * w3r - b3i * w3i; Unsafe.Add(ref Ryi, o + 3 * s) = b3r * w3i + b3i * w3r;
                    Unsafe.Add(ref Ryr, o + 4 * s) = b4r * w4r - b4i * w4i; Unsafe.Add(ref Ryi, o + 4 * s) = b4r * w4i + b4i * w4r;
                }
            }
        }

        private void Generic(V[] xr, V[] xi, V[] yr, V[] yi)
        {
            int p = _p, s = _s, sub = _sub;
            var br = new V[p];
            var bi = new V[p];
            for (int j = 0; j < sub; j++)
                for (int q = 0; q < s; q++)
                {
                    for (int k = 0; k < p; k++)
                    {
                        V sr = V.Zero, si = V.Zero;
                        for (int r = 0; r < p; r++)
                        {
                            int e = r * k % p, i = q + s * (j + r * sub);
                            sr += xr[i] * _rootR[e] - xi[i] * _rootI[e];
                            si += xr[i] * _rootI[e] + xi[i] * _rootR[e];
                        }
                        br[k] = sr; bi[k] = si;
                    }
                    int o = q + s * p * j;
                    yr[o] = br[0]; yi[o] = bi[0];
                    for (int k = 1; k < p; k++)
                    {
                        double wr = _twr[j * (p - 1) + k - 1], wi = _twi[j * (p - 1) + k - 1];
                        yr[o + k * s] = br[k] * wr - bi[k] * wi;
                        yi[o + k * s] = br[k] * wi + bi[k] * wr;
                    }
                }
        }
    }
}
