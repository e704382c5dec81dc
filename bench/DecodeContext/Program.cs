using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Trace = StepAudio2.Lab.Tracing.Trace;

// Per-token decode time of a Qwen2 decoder at two context lengths, and one full-size encoder block, written only with
// APIs every benchmarked commit has (bench/run_boundary.sh builds this against each). Random bf16 weights in memory.
// Usage: DecodeContext --label NAME [--layers 8] [--contexts 100,2000] [--steps 16] [--out file.json]
string label = "?", outPath = "";
int layers = 8, steps = 16;
int[] contexts = [100, 2000];
for (int i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--label": label = args[++i]; break;
        case "--layers": layers = int.Parse(args[++i]); break;
        case "--steps": steps = int.Parse(args[++i]); break;
        case "--contexts": contexts = args[++i].Split(',').Select(int.Parse).ToArray(); break;
        case "--out": outPath = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }

var rng = new Random(1234);
Tensor Bf16(params int[] shape)
{
    var bits = new ushort[Tensor.CountElements(shape)];
    for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)(BitConverter.SingleToInt32Bits((float)(rng.NextDouble() * 0.04 - 0.02)) >> 16);
    return Tensor.FromBFloat16Bits(bits, shape);
}
Tensor Ones(int n) => Tensor.FromArray(Enumerable.Repeat(1f, n).ToArray(), n);

// Qwen2.5-0.5B widths (hidden 896, 14 heads / 2 KV heads, head_dim 64, intermediate 4864): narrow enough that the
// KV cache is a visible share of each step's memory traffic at 2 000 tokens, so O(L) copies per token would show.
var text = new TextConfig(896, 4864, 14, 2, layers, 1024, 1e-6, 1e6, 32768, 0, 0, "bfloat16");
var w = new Trace();
int d = text.HiddenSize, kv = text.NumKeyValueHeads * (d / text.NumAttentionHeads);
w.Record("model.embed_tokens.weight", Bf16(text.VocabSize, d));
w.Record("model.norm.weight", Ones(d));
for (int l = 0; l < layers; l++)
{
    string p = $"model.layers.{l}";
    w.Record(p + ".input_layernorm.weight", Ones(d));
    w.Record(p + ".post_attention_layernorm.weight", Ones(d));
    w.Record(p + ".self_attn.q_proj.weight", Bf16(d, d)); w.Record(p + ".self_attn.q_proj.bias", Bf16(d));
    w.Record(p + ".self_attn.k_proj.weight", Bf16(kv, d)); w.Record(p + ".self_attn.k_proj.bias", Bf16(kv));
    w.Record(p + ".self_attn.v_proj.weight", Bf16(kv, d)); w.Record(p + ".self_attn.v_proj.bias", Bf16(kv));
    w.Record(p + ".self_attn.o_proj.weight", Bf16(d, d));
    w.Record(p + ".mlp.gate_proj.weight", Bf16(text.IntermediateSize, d));
    w.Record(p + ".mlp.up_proj.weight", Bf16(text.IntermediateSize, d));
    w.Record(p + ".mlp.down_proj.weight", Bf16(d, text.IntermediateSize));
}
var model = new Qwen2Model(new Weights(w.ToTensorSource()), text);

Tensor Hidden(int n, int width = 0)
{
    if (width == 0) width = d;
    var x = new float[n * width];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
    return Tensor.FromArray(x, n, width);
}

var rows = new List<Dictionary<string, object>>();
foreach (int context in contexts)
{
    var cache = new KvCache(text);
    var sw = Stopwatch.StartNew();
    for (int done = 0; done < context; done += 500) model.Forward(Hidden(Math.Min(500, context - done)), done, cache); // prefill in pieces
    double prefillS = sw.Elapsed.TotalSeconds;
    model.Forward(Hidden(1), context, cache); // warm-up step
    var times = new List<double>();
    for (int s = 0; s < steps; s++)
    {
        sw.Restart();
        model.Forward(Hidden(1), context + 1 + s, cache);
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    rows.Add(new() { ["case"] = $"decode_at_{context}", ["context"] = context, ["median_ms"] = times[times.Count / 2], ["min_ms"] = times[0], ["prefill_s"] = prefillS });
    Console.Error.WriteLine($"{label}: decode at {context}: median {times[times.Count / 2]:F2} ms/token (min {times[0]:F2})");
}

// one full-size encoder block (1280-d, 20 heads, 1500 frames), bf16 weights
{
    var enc = new Trace();
    const int e = 1280, t = 1500;
    string p = "blocks.0";
    enc.Record(p + ".attn.query.weight", Bf16(e, e)); enc.Record(p + ".attn.query.bias", Bf16(e));
    enc.Record(p + ".attn.key.weight", Bf16(e, e));
    enc.Record(p + ".attn.value.weight", Bf16(e, e)); enc.Record(p + ".attn.value.bias", Bf16(e));
    enc.Record(p + ".attn.out.weight", Bf16(e, e)); enc.Record(p + ".attn.out.bias", Bf16(e));
    enc.Record(p + ".attn_ln.weight", Ones(e)); enc.Record(p + ".attn_ln.bias", Bf16(e));
    enc.Record(p + ".mlp.0.weight", Bf16(4 * e, e)); enc.Record(p + ".mlp.0.bias", Bf16(4 * e));
    enc.Record(p + ".mlp.2.weight", Bf16(e, 4 * e)); enc.Record(p + ".mlp.2.bias", Bf16(e));
    enc.Record(p + ".mlp_ln.weight", Ones(e)); enc.Record(p + ".mlp_ln.bias", Bf16(e));
    var block = new ResidualAttentionBlock(new Weights(enc.ToTensorSource()), p, e, 20);
    var x = Hidden(t, e).Reshape(1, t, e);
    var mask = Tensor.Zeros(DType.F32, 1, 1, 1, t);
    block.Forward(x, mask, null);
    var times = new List<double>();
    for (int s = 0; s < 3; s++)
    {
        var sw = Stopwatch.StartNew();
        block.Forward(x, mask, null);
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    rows.Add(new() { ["case"] = "encoder_block_1500", ["median_ms"] = times[1], ["min_ms"] = times[0] });
    Console.Error.WriteLine($"{label}: encoder block: median {times[1]:F1} ms");
}

var json = JsonSerializer.Serialize(new { label, layers, steps, rows }, new JsonSerializerOptions { WriteIndented = true });
if (outPath.Length > 0) File.WriteAllText(outPath, json); else Console.WriteLine(json);
return 0;
