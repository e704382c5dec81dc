using System.Text;
using StepAudio2.Lab.Generation;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>A logits source driven by a function of (step, sequence so far); records what it was fed.</summary>
internal sealed class ScriptedLogitsSource(int vocabSize, Func<int, IReadOnlyList<int>, float[]> logitsFor) : ILogitsSource
{
    private readonly List<int> _sequence = [];

    public int VocabSize { get; } = vocabSize;
    public int Prefills { get; private set; }
    /// <summary>Ids fed through <see cref="Step"/>, in order.</summary>
    public List<int> Stepped { get; } = [];
    /// <summary>Every logits vector handed out (prefill first).</summary>
    public List<float[]> Returned { get; } = [];
    public Action<int>? OnStep { get; init; }

    public float[] Prefill(IReadOnlyList<int> promptIds, PromptAudio? audio)
    {
        if (audio is not null) throw new NotSupportedException("no audio in the fake");
        Prefills++;
        _sequence.Clear();
        _sequence.AddRange(promptIds);
        Stepped.Clear();
        Returned.Clear();
        return Hand(logitsFor(0, _sequence));
    }

    public float[] Step(int id)
    {
        Stepped.Add(id);
        _sequence.Add(id);
        OnStep?.Invoke(Stepped.Count);
        return Hand(logitsFor(Stepped.Count, _sequence));
    }

    private float[] Hand(float[] logits)
    {
        Returned.Add(logits);
        return logits;
    }

    /// <summary>Greedy decoding of this source yields <paramref name="script"/> (then keeps repeating id 1).</summary>
    public static ScriptedLogitsSource Forced(int vocabSize, params int[] script) =>
        new(vocabSize, (step, _) => OneHot(vocabSize, step < script.Length ? script[step] : 1));

    /// <summary>Fresh standard-normal logits ×<paramref name="scale"/> each step, the same for the same step.</summary>
    public static ScriptedLogitsSource Random(int vocabSize, float scale = 3f) =>
        new(vocabSize, (step, _) =>
        {
            var rng = new System.Random(7919 * (step + 1));
            var x = new float[vocabSize];
            for (int i = 0; i < x.Length; i++) x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
            return x;
        });

    public static float[] OneHot(int vocabSize, int id)
    {
        var x = new float[vocabSize];
        x[id] = 10f;
        return x;
    }
}

/// <summary>A decoder from a fixed id → string table (unknown ids decode as "·").</summary>
internal sealed class TableDecoder(IReadOnlyDictionary<int, string> table) : ITokenDecoder
{
    public int Calls { get; private set; }

    public string Decode(IReadOnlyList<int> ids)
    {
        Calls++;
        var sb = new StringBuilder();
        foreach (int id in ids) sb.Append(table.TryGetValue(id, out var s) ? s : "·");
        return sb.ToString();
    }
}

/// <summary>A byte-level decoder like the real one: each id is one byte, decoded as UTF-8 with U+FFFD for bad input.</summary>
internal sealed class ByteDecoder : ITokenDecoder
{
    public string Decode(IReadOnlyList<int> ids) => Encoding.UTF8.GetString(ids.Select(i => (byte)i).ToArray());
}
