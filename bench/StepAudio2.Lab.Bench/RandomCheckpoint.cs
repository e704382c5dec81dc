using System.Text;
using System.Text.Json;
using StepAudio2.Lab.Config;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// Writes a random-weight checkpoint at the FULL Step-Audio 2 mini shapes: the real config.json, the real index's
/// shard placement (model-0000{1..4}-of-00004.safetensors, 832 bf16 tensors, 16.6 GB), streamed tensor by tensor so
/// memory stays small. For benchmarks only; never committed.
/// Usage: StepAudio2.Lab.Bench make-checkpoint --from ../shared/models/step-audio-2-mini --out DIR
/// </summary>
internal static class RandomCheckpoint
{
    public static int Run(string[] args)
    {
        string from = args.SkipWhile(a => a != "--from").Skip(1).FirstOrDefault() ?? throw new ArgumentException("--from DIR");
        string outDir = args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault() ?? throw new ArgumentException("--out DIR");
        Directory.CreateDirectory(outDir);
        var config = StepAudio2Config.Load(from);
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(from, "model.safetensors.index.json")));
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        // the model benchmarks build encoders from EncoderKeys: keep it equal to the published key list
        var published = weightMap.Keys.Where(k => k.StartsWith("encoder.", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        if (!published.SequenceEqual(EncoderKeys(config.Audio).Order(StringComparer.Ordinal)))
            throw new InvalidOperationException("EncoderKeys differs from the encoder keys of the published index");
        long total = 0;
        foreach (var shard in weightMap.Values.Distinct().Order())
        {
            var names = weightMap.Where(kv => kv.Value == shard).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            var shapes = names.ToDictionary(n => n, n => ShapeOf(n, config));
            total += WriteShard(Path.Combine(outDir, shard), names, shapes);
            Console.Error.WriteLine($"wrote {shard}: {names.Count} tensors");
        }
        File.Copy(Path.Combine(from, "model.safetensors.index.json"), Path.Combine(outDir, "model.safetensors.index.json"), true);
        foreach (var f in new[] { "config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json" })
            if (File.Exists(Path.Combine(from, f))) File.Copy(Path.Combine(from, f), Path.Combine(outDir, f), true);
        Console.Error.WriteLine($"total {total:N0} bytes");
        return 0;
    }

    /// <summary>Shapes from docs/model.md §8, derived from the config (as the official constructors do).</summary>
    public static int[] ShapeOf(string name, StepAudio2Config c)
    {
        var t = c.Text; var a = c.Audio;
        int d = t.HiddenSize, kv = t.NumKeyValueHeads * t.HeadDim, e = a.NAudioState;
        string tail = name[(name.LastIndexOf('.') + 1)..];
        bool bias = tail == "bias";
        string module = name[..name.LastIndexOf('.')];
        string leaf = module[(module.LastIndexOf('.') + 1)..];
        if (name.StartsWith("model.") || name == "lm_head.weight")
        {
            return leaf switch
            {
                "embed_tokens" or "lm_head" => [t.VocabSize, d],
                "input_layernorm" or "post_attention_layernorm" or "norm" => [d],
                "q_proj" => bias ? [d] : [d, d],
                "k_proj" or "v_proj" => bias ? [kv] : [kv, d],
                "o_proj" => [d, d],
                "gate_proj" or "up_proj" => [t.IntermediateSize, d],
                "down_proj" => [d, t.IntermediateSize],
                _ => throw new ArgumentException(name),
            };
        }
        if (name.StartsWith("encoder.")) return EncoderShapeOf(name, a);
        return leaf switch // adapter
        {
            "conv" => bias ? [e] : [e, e, a.KernelSize],
            "linear1" => bias ? [2048] : [2048, e],
            "linear2" => bias ? [d] : [d, 2048],
            _ => throw new ArgumentException(name),
        };
    }

    /// <summary>Shape of an <c>encoder.*</c> weight (docs/model.md §3, §8), from the encoder config alone.</summary>
    public static int[] EncoderShapeOf(string name, AudioEncoderConfig a)
    {
        int e = a.NAudioState;
        bool bias = name.EndsWith(".bias", StringComparison.Ordinal);
        string module = name[..name.LastIndexOf('.')];
        return module[(module.LastIndexOf('.') + 1)..] switch
        {
            "conv1" => bias ? [e] : [e, a.NMels, 3],
            "conv2" => bias ? [e] : [e, e, 3],
            "positional_embedding" => [a.NAudioCtx, e],
            "query" or "key" or "value" or "out" => bias ? [e] : [e, e],
            "attn_ln" or "mlp_ln" or "after_norm" => [e],
            "0" => bias ? [4 * e] : [4 * e, e],
            "2" => bias ? [e] : [e, 4 * e],
            _ => throw new ArgumentException(name),
        };
    }

    /// <summary>The weight keys of one encoder block <c>{prefix}</c> (Whisper <c>ResidualAttentionBlock</c>; the key projection has no bias).</summary>
    public static IEnumerable<string> EncoderBlockKeys(string prefix)
    {
        foreach (var m in new[] { "query", "value", "out" }) { yield return $"{prefix}.attn.{m}.weight"; yield return $"{prefix}.attn.{m}.bias"; }
        yield return $"{prefix}.attn.key.weight";
        foreach (var k in new[] { "attn_ln.weight", "attn_ln.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp_ln.weight", "mlp_ln.bias" })
            yield return $"{prefix}.{k}";
    }

    /// <summary>Every <c>encoder.*</c> weight key in module order: stem, blocks, final norm.</summary>
    public static IEnumerable<string> EncoderKeys(AudioEncoderConfig a)
    {
        string[] stem = ["encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight", "encoder.conv2.bias", "encoder.positional_embedding.weight"];
        return stem.Concat(Enumerable.Range(0, a.NAudioLayer).SelectMany(i => EncoderBlockKeys($"encoder.blocks.{i}")))
            .Concat(["encoder.after_norm.weight", "encoder.after_norm.bias"]);
    }

    private static long WriteShard(string path, List<string> names, Dictionary<string, int[]> shapes)
    {
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var n in names)
        {
            long bytes = shapes[n].Aggregate(2L, (p, x) => p * x);
            header.Append($",\"{n}\":{{\"dtype\":\"BF16\",\"shape\":[{string.Join(',', shapes[n])}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        header.Append('}');
        while ((header.Length + 0) % 8 != 0) header.Append(' ');
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        f.Write(BitConverter.GetBytes((long)header.Length));
        f.Write(Encoding.ASCII.GetBytes(header.ToString()));
        var buffer = new ushort[1 << 22];
        foreach (var n in names)
        {
            var stream = new RandomBf16(n, shapes[n]);
            long count = shapes[n].Aggregate(1L, (p, x) => p * x);
            while (count > 0)
            {
                int chunk = (int)Math.Min(count, buffer.Length);
                stream.Fill(buffer.AsSpan(0, chunk));
                f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer.AsSpan(0, chunk)));
                count -= chunk;
            }
        }
        return offset;
    }

    /// <summary>
    /// The values of one random weight as bf16 bits, a deterministic stream seeded by the tensor's name (so a checkpoint
    /// written to disk and one made in memory hold the same numbers): |w| ≈ 2^(e−127) with e from the fan-in, random sign
    /// and mantissa, so activations stay bounded at any depth; norm weights ≈ 1.
    /// </summary>
    public struct RandomBf16
    {
        private ulong _state;
        private readonly bool _norm;
        private readonly int _exp;

        public RandomBf16(string name, int[] shape)
        {
            ulong h = 0xCBF29CE484222325UL; // FNV-1a of the name: a per-tensor seed
            foreach (char c in name) { h ^= c; h *= 0x100000001B3UL; }
            _state = h | 1;
            _norm = name.EndsWith("norm.weight") || name.EndsWith("_ln.weight") || name.EndsWith("layernorm.weight");
            int fanIn = shape.Length >= 2 ? shape[1] * (shape.Length == 3 ? shape[2] : 1) : 1;
            _exp = _norm ? 127 : 127 - (int)Math.Ceiling(Math.Log2(Math.Sqrt(fanIn))) - 1;
        }

        /// <summary>The next <c>dst.Length</c> values of the stream.</summary>
        public void Fill(Span<ushort> dst)
        {
            ulong state = _state;
            for (int i = 0; i < dst.Length; i++)
            {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                uint r = (uint)state;
                dst[i] = _norm ? (ushort)(0x3F80 | (r & 0x0F)) : (ushort)((r & 0x8000) | ((uint)(_exp - (int)((r >> 8) & 1)) << 7) | (r & 0x7F));
            }
            _state = state;
        }
    }
}
