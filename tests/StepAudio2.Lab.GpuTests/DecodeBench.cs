using System.Diagnostics;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.GpuTests;

/// <summary>The Qwen2 decoder's shapes (Step-Audio 2 mini's text_config: config.json of the real checkpoint).</summary>
public sealed record DecoderShape(int Hidden, int Layers, int Heads, int KvHeads, int HeadDim, int Intermediate, int Vocab, float Theta, float Eps)
{
    public static readonly DecoderShape StepAudio2Mini = new(3584, 28, 28, 4, 128, 18944, 158720, 1e6f, 1e-6f);
    public static readonly DecoderShape Small = new(256, 2, 4, 2, 64, 512, 1000, 1e6f, 1e-6f);
}

public sealed record BenchResult(string Name, string Precision, string Weights, int PromptTokens, int DecodeTokens, double PrefillMs, double DecodeTokPerS,
    double MsPerToken, double WeightGiB, double EffectiveGBs, long DeviceMiB, double OpsPerToken, double TransfersPerToken);

/// <summary>
/// A Qwen2-7B-shaped decoder (28 layers, GQA 28/4, SwiGLU, RoPE θ = 1e6, KV cache on the device) written in the
/// backend's ops with random weights made on the device: prefill of a prompt, then greedy decoding, timed with the
/// device synchronised by the argmax download of each step. The same layer sequence as Models/Llm/Qwen2.cs.
/// </summary>
public sealed class DecodeBench
{
    private readonly CudaBackend _b;
    private readonly DecoderShape _s;
    private readonly int _maxT;
    private readonly bool _int4;
    private readonly Tensor _embed, _lmHead, _finalNorm;
    private readonly Layer[] _layers;
    private readonly Tensor[] _kc, _vc;

    private sealed record Lin(Tensor? W, QuantizedWeight? Q, Tensor? Bias);
    private sealed record Layer(Tensor Norm1, Tensor Norm2, Lin Q, Lin K, Lin V, Lin O, Lin Gate, Lin Up, Lin Down);

    public double WeightBytes { get; private set; }

    public DecodeBench(CudaBackend backend, DecoderShape shape, int maxT, bool int4 = false)
    {
        _b = backend; _s = shape; _maxT = maxT; _int4 = int4;
        ulong seed = 1;
        var dt = backend.Precision == CudaPrecision.Bf16 ? DType.BF16 : DType.F32;
        Tensor R(DType d, float scale, params int[] sh) { var t = _b.RandomUniform(d, sh, seed++ * 7919, scale); WeightBytes += t.ByteCount; return t; }
        Tensor Norm(int n) => _b.Scale(R(DType.F32, 0.1f, n), 1f, 1f);
        Lin L(int o, int i, bool bias)
        {
            var b = bias ? R(DType.F32, 0.02f, o) : null;
            if (!_int4) return new Lin(R(dt, 0.02f, o, i), null, b);
            // MLX affine 4-bit, group 64: random codes and scales (timing only)
            var words = R(DType.F32, 1f, o, i / 8);
            var codes = new Tensor(words.Storage, DType.U32, [o, i / 8]);
            var q = QuantizedWeight.Create(codes, R(DType.F32, 0.001f, o, i / 64), R(DType.F32, 0.01f, o, i / 64), 4, 64);
            return new Lin(null, q, b);
        }
        int h = shape.Hidden, qd = shape.Heads * shape.HeadDim, kvd = shape.KvHeads * shape.HeadDim;
        _embed = R(DType.BF16, 0.02f, shape.Vocab, h);
        _layers = new Layer[shape.Layers];
        for (int l = 0; l < shape.Layers; l++)
            _layers[l] = new Layer(Norm(h), Norm(h), L(qd, h, true), L(kvd, h, true), L(kvd, h, true), L(h, qd, false),
                L(shape.Intermediate, h, false), L(shape.Intermediate, h, false), L(h, shape.Intermediate, false));
        _finalNorm = Norm(h);
        _lmHead = R(dt, 0.02f, shape.Vocab, h);
        _kc = new Tensor[shape.Layers]; _vc = new Tensor[shape.Layers];
        for (int l = 0; l < shape.Layers; l++)
        {
            _kc[l] = _b.Zeros(DType.F32, [1, shape.KvHeads, maxT, shape.HeadDim]);
            _vc[l] = _b.Zeros(DType.F32, [1, shape.KvHeads, maxT, shape.HeadDim]);
        }
        _b.Synchronize();
    }

    private Tensor Apply(Tensor x, Lin l) => l.Q is not null ? _b.QuantizedMatmul(x, l.Q, l.Bias) : _b.Linear(x, l.W!, l.Bias);

    /// <summary>Logits [1, vocab] of the last of <paramref name="ids"/> at positions pos…; the KV cache is appended.</summary>
    public Tensor Forward(int[] ids, int pos)
    {
        var s = _s;
        int t = ids.Length;
        if (pos + t > _maxT) throw new ArgumentException($"bench: position {pos + t} beyond the cache of {_maxT}");
        var x = _b.Take(_embed, ids).Reshape(1, t, s.Hidden);
        float scale = 1f / MathF.Sqrt(s.HeadDim);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            var h = _b.RmsNorm(x, L.Norm1, s.Eps);
            var q = _b.Rope(Apply(h, L.Q).Reshape(1, t, s.Heads, s.HeadDim).Permute(0, 2, 1, 3), pos, s.Theta);
            var k = _b.Rope(Apply(h, L.K).Reshape(1, t, s.KvHeads, s.HeadDim).Permute(0, 2, 1, 3), pos, s.Theta);
            var v = Apply(h, L.V).Reshape(1, t, s.KvHeads, s.HeadDim).Permute(0, 2, 1, 3);
            _b.SliceUpdate(_kc[l], k, 2, pos);
            _b.SliceUpdate(_vc[l], v, 2, pos);
            var a = _b.ScaledDotProductAttention(q, _kc[l].Slice(2, 0, pos + t), _vc[l].Slice(2, 0, pos + t), scale, null, true, null);
            var o = _b.Contiguous(a.Permute(0, 2, 1, 3)).Reshape(1, t, s.Heads * s.HeadDim);
            x = _b.Binary(BinaryOp.Add, x, Apply(o, L.O));
            h = _b.RmsNorm(x, L.Norm2, s.Eps);
            var m = _b.Binary(BinaryOp.Multiply, _b.Unary(UnaryOp.Silu, Apply(h, L.Gate), 0), Apply(h, L.Up));
            x = _b.Binary(BinaryOp.Add, x, Apply(m, L.Down));
        }
        var last = _b.RmsNorm(x.Slice(1, t - 1, 1), _finalNorm, s.Eps).Reshape(1, s.Hidden);
        return _b.Linear(last, _lmHead, null);
    }

    /// <summary>Prefill of <paramref name="prompt"/> tokens (best of a few), then <paramref name="steps"/> greedy steps.</summary>
    public BenchResult Run(string name, int prompt, int steps, TextWriter log)
    {
        var rng = new Random(7);
        var ids = Enumerable.Range(0, prompt).Select(_ => rng.Next(_s.Vocab)).ToArray();
        // warm-up: kernels loaded, cuBLAS heuristics and the pool's blocks in place
        _b.Argmax(Forward(ids, 0));
        _b.Argmax(Forward([1], prompt));
        double prefill = double.MaxValue;
        int next = 0;
        for (int r = 0; r < 3; r++)
        {
            var sw = Stopwatch.StartNew();
            next = _b.Argmax(Forward(ids, 0))[0];
            prefill = Math.Min(prefill, sw.Elapsed.TotalMilliseconds);
        }
        _b.Stats.Reset();
        var dsw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) next = _b.Argmax(Forward([next], prompt + i))[0];
        double secs = dsw.Elapsed.TotalSeconds;
        double tokS = steps / secs;
        // bytes streamed per token: every weight once except the embedding table (one row)
        double perToken = WeightBytes - (double)_embed.ByteCount;
        var result = new BenchResult(name, _b.Precision.ToString().ToLowerInvariant(), _int4 ? "int4-g64" : _b.Precision == CudaPrecision.Bf16 ? "bf16" : "f32",
            prompt, steps, prefill, tokS, 1000 / tokS, WeightBytes / (1L << 30), perToken * tokS / 1e9, _b.Device.LiveBytes >> 20,
            (double)_b.Stats.Ops / steps, (double)_b.Stats.Transfers / steps);
        log.WriteLine($"bench {name}: prefill {prompt} tokens {prefill:F1} ms; decode {tokS:F1} tok/s ({1000 / tokS:F2} ms/token, {result.EffectiveGBs:F0} GB/s of weights); " +
            $"{result.WeightGiB:F2} GiB weights, {result.DeviceMiB} MiB live; {result.OpsPerToken:F0} ops and {result.TransfersPerToken:F1} transfers per token");
        return result;
    }
}
