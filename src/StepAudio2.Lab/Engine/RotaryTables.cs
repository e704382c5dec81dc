namespace StepAudio2.Lab.Engine;

/// <summary>
/// The rotary angles of HF Qwen2 (Qwen2RotaryEmbedding, default rope type): inv_freq_i = 1/θ^(2i/D) and
/// angle(p, i) = (offset + p)·inv_freq_i, both in float32, then cos/sin in float32.
/// </summary>
public static class RotaryTables
{
    /// <returns>cos and sin, [n, D/2] each, row-major by position.</returns>
    public static (float[] Cos, float[] Sin) Compute(int offset, int n, int hd, float theta)
    {
        if (hd <= 0 || hd % 2 != 0 || n < 0) throw new ArgumentException($"rotary tables: head_dim {hd} must be even and positive, n {n} ≥ 0");
        int half = hd / 2;
        var invFreq = new float[half];
        for (int i = 0; i < half; i++) invFreq[i] = 1f / MathF.Pow(theta, (2 * i) / (float)hd);
        var cos = new float[n * half];
        var sin = new float[n * half];
        for (int p = 0; p < n; p++)
            for (int i = 0; i < half; i++)
            {
                float angle = (float)(offset + p) * invFreq[i];
                cos[p * half + i] = MathF.Cos(angle);
                sin[p * half + i] = MathF.Sin(angle);
            }
        return (cos, sin);
    }
}
