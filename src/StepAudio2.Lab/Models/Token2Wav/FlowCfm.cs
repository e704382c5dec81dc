using System.Diagnostics;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Trace = StepAudio2.Lab.Tracing.Trace;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>Progress of <see cref="Flow.Generate"/>: Euler step <see cref="Step"/> (1-based) of <see cref="Steps"/> finished.</summary>
public readonly record struct FlowProgress(int Step, int Steps, int Frames, TimeSpan Elapsed);

/// <summary>
/// <c>CausalConditionalCFM</c> (module <c>flow.decoder</c>, docs/model.md §7.8): Euler integration of the DiT's velocity from the
/// noise z over the cosine schedule τ_k = 1 − cos(k·π/2n), with classifier-free guidance as a batch of two rows
/// (conditioned; μ = s = cond = 0) mixed as (1+r)·v₀ − r·v₁. τ, t and dt are float32 exactly as the official loop keeps
/// them (running t ← t + dt, dt ← τ_{k+1} − t). The estimator output of step K (both rows, [2, 80, T]) is traced as
/// <c>flow.decoder.estimator.step.K</c>.
/// </summary>
public sealed class CausalConditionalCfm
{
    public CausalConditionalCfm(Weights w, CfmConfig c, string key = "decoder")
    {
        Config = c;
        Path = FlowWeights.TracePath(key);
        Estimator = new Dit(w, c.Estimator, key + ".estimator");
    }

    public CfmConfig Config { get; }
    public string Path { get; }
    public Dit Estimator { get; }

    /// <summary>
    /// The float32 time grid: linspace(0, 1, n+1) as torch computes it (start + step·i below the middle, end − step·(n−i)
    /// from it), then 1 − cos(t·0.5·π).
    /// </summary>
    public static float[] TSpan(int steps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        int count = steps + 1, halfway = count / 2;
        float step = 1f / steps;
        var t = new float[count];
        for (int i = 0; i < count; i++)
        {
            float lin = i < halfway ? step * i : 1f - step * (count - i - 1);
            float arg = lin * 0.5f * MathF.PI;
            t[i] = 1f - FlowMath.Cos(arg);
        }
        return t;
    }

    /// <summary>
    /// μ [1, 80, T], speaker s [1, 80], cond [1, 80, T] and noise z [1, 80, T] → mel x [1, 80, T] after
    /// <paramref name="steps"/> Euler steps.
    /// </summary>
    public Tensor Forward(Tensor mu, Tensor spks, Tensor cond, Tensor noise, int steps = 10, Trace? trace = null, IProgress<FlowProgress>? progress = null)
    {
        int c = Estimator.Config.OutChannels;
        if (mu.Rank != 3 || mu.Shape[0] != 1 || mu.Shape[1] != c)
            throw new ArgumentException($"{Path}: mu {Tensor.ShapeString(mu.Shape)} must be [1, {c}, T]");
        int frames = mu.Shape[2];
        if (!cond.Shape.SequenceEqual(mu.Shape)) throw new ArgumentException($"{Path}: cond {Tensor.ShapeString(cond.Shape)} must be {Tensor.ShapeString(mu.Shape)}");
        if (!noise.Shape.SequenceEqual(mu.Shape)) throw new ArgumentException($"{Path}: noise {Tensor.ShapeString(noise.Shape)} must be {Tensor.ShapeString(mu.Shape)}");
        if (spks.ElementCount != c) throw new ArgumentException($"{Path}: speaker embedding {Tensor.ShapeString(spks.Shape)} must hold {c} values");

        var tSpan = TSpan(steps);
        float t = tSpan[0], dt = tSpan[1] - tSpan[0];
        float cfg = (float)Config.InferenceCfgRate, cfgCond = (float)(1.0 + Config.InferenceCfgRate);
        // CFG as a batch of two: row 0 conditioned, row 1 unconditioned (μ, s, cond zero); only x changes between steps
        var conditioning = Dit.Conditioning(Ops.FromHost(mu), Ops.FromHost(spks), Ops.FromHost(cond)); // [1, 3C, T]
        conditioning = Ops.Concatenate([conditioning, Ops.Zeros(conditioning.Shape)], 0);
        var x = Ops.FromHost(noise);
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= steps; step++)
        {
            var v = Estimator.Velocity(Ops.Concatenate([Ops.Concatenate([x, x], 0), conditioning], 1), [t, t]);
            trace?.Record($"{Estimator.Path}.step.{step - 1}", v);
            // x ← x + dt·((1 + r)·v_cond − r·v_uncond)
            var guided = Ops.Subtract(Ops.Multiply(v.Slice(0, 0, 1), cfgCond), Ops.Multiply(v.Slice(0, 1, 1), cfg));
            x = Ops.Add(x, Ops.Multiply(guided, dt));
            t += dt;
            if (step < steps) dt = tSpan[step + 1] - t;
            progress?.Report(new FlowProgress(step, steps, frames, clock.Elapsed));
        }
        var mel = x;
        trace?.Record(Path, mel);
        return mel;
    }
}
