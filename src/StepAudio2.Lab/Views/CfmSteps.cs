using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>
/// The flow's CFM trajectory (docs/model.md §7.8) rebuilt from a trace or dump: the starting noise <c>input.noise</c> and the
/// estimator's two rows per Euler step (<c>flow.decoder.estimator.step.K</c>, [2, 80, T]: conditioned, unconditioned) give
/// every state x_K with the same float32 operations as <see cref="CausalConditionalCfm"/> (x ← x + dt·((1+r)·v₀ − r·v₁) on
/// its time grid), so the last state equals the traced <c>flow.decoder</c> exactly when the rate is the run's.
/// </summary>
/// <param name="Noise">x₀ [1, 80, T].</param>
/// <param name="States">x₁ … x_n, each [1, 80, T].</param>
/// <param name="Conditional">v₀ of each step [1, 80, T].</param>
/// <param name="Unconditional">v₁ of each step (μ, speaker and cond zeroed) [1, 80, T].</param>
/// <param name="Times">the time grid τ₀ … τ_n.</param>
public sealed record CfmSteps(Tensor Noise, IReadOnlyList<Tensor> States, IReadOnlyList<Tensor> Conditional, IReadOnlyList<Tensor> Unconditional,
    float[] Times, double CfgRate)
{
    /// <summary>Where the estimator's per-step outputs are recorded.</summary>
    public const string EstimatorPath = "flow.decoder.estimator";

    /// <summary>Euler steps found.</summary>
    public int Steps => States.Count;

    /// <summary>Rebuilds the trajectory from <c>input.noise</c> and every <c>flow.decoder.estimator.step.K</c> of <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException">the noise or a step is missing, or shapes disagree.</exception>
    public static CfmSteps FromSource(ITensorSource source, double cfgRate = 0.7)
    {
        if (!source.Contains("input.noise")) throw new ArgumentException("no input.noise (the CFM's starting point) in the trace or dump");
        var noise = source.Get("input.noise");
        if (noise.Rank != 3 || noise.Shape[0] != 1) throw new ArgumentException($"input.noise {Tensor.ShapeString(noise.Shape)} must be [1, 80, T]");
        int steps = 0;
        while (source.Contains($"{EstimatorPath}.step.{steps}")) steps++;
        if (steps == 0) throw new ArgumentException($"no {EstimatorPath}.step.0 in the trace or dump");

        int c = noise.Shape[1], frames = noise.Shape[2];
        long n = (long)c * frames;
        var tSpan = CausalConditionalCfm.TSpan(steps);
        float r = (float)cfgRate, rc = (float)(1.0 + cfgRate);
        float t = tSpan[0], dt = tSpan[1] - tSpan[0];
        var x = noise.ToFloatArray();
        var states = new List<Tensor>(steps);
        var cond = new List<Tensor>(steps);
        var uncond = new List<Tensor>(steps);
        for (int k = 0; k < steps; k++)
        {
            var v = source.Get($"{EstimatorPath}.step.{k}");
            if (v.Rank != 3 || v.Shape[0] != 2 || v.Shape[1] != c || v.Shape[2] != frames)
                throw new ArgumentException($"{EstimatorPath}.step.{k} {Tensor.ShapeString(v.Shape)} must be [2, {c}, {frames}]");
            var vs = v.ToFloatArray();
            // the same expression and order as CausalConditionalCfm.Forward, so the result is bit-identical
            for (long i = 0; i < n; i++)
            {
                float guided = rc * vs[i] - r * vs[n + i];
                x[i] = x[i] + dt * guided;
            }
            t += dt;
            if (k + 1 < steps) dt = tSpan[k + 2] - t;
            states.Add(Tensor.FromArray((float[])x.Clone(), 1, c, frames));
            cond.Add(Tensor.FromArray(vs.AsSpan(0, (int)n).ToArray(), 1, c, frames));
            uncond.Add(Tensor.FromArray(vs.AsSpan((int)n, (int)n).ToArray(), 1, c, frames));
        }
        return new CfmSteps(noise, states, cond, uncond, tSpan, cfgRate);
    }

    /// <summary>The states as mels for <see cref="MelView.Strip"/>, titled with the step and its time τ.</summary>
    public IReadOnlyList<MelData> StateMels(int promptFrames = 0) =>
        States.Select((s, k) => MelData.ChannelsFirst(s, $"x after step {k + 1} (τ={Times[k + 1]:F3})", promptFrames)).ToList();

    /// <summary>The guided velocity (1+r)·v₀ − r·v₁ of step <paramref name="k"/>, [1, 80, T].</summary>
    public Tensor Guided(int k)
    {
        var a = Conditional[k].ToFloatArray();
        var b = Unconditional[k].ToFloatArray();
        float r = (float)CfgRate, rc = (float)(1.0 + CfgRate);
        for (int i = 0; i < a.Length; i++) a[i] = rc * a[i] - r * b[i];
        return Tensor.FromArray(a, Conditional[k].Shape);
    }
}
