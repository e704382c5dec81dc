using System.Numerics.Tensors;

namespace StepAudio2.Lab.Generation;

/// <summary>
/// Hugging Face's per-step processing of float32 logits, in <c>generate</c>'s order (docs/model.md §6.4): repetition penalty →
/// temperature → top-k → top-p → softmax → multinomial draw; greedy takes the argmax after the penalty.
/// </summary>
/// <remarks>
/// <para>Removed tokens get −∞ (HF's <c>filter_value</c>), so their probability is exactly 0 after the softmax.</para>
/// <para>The draw uses a seedable <see cref="Random"/>: it is <b>not</b> bit-compatible with <c>torch.multinomial</c>'s
/// RNG stream, so a seed here reproduces our own runs, not PyTorch's. Parity with HF is on the probability vector.</para>
/// <para>Ties: top-k keeps every score equal to the k-th largest (HF masks <c>scores &lt; topk(...)[-1]</c>); top-p
/// sorts ascending with the lower id first among equal scores, which is what torch's CPU sort does for short rows
/// (its order among ties on long rows is unspecified, so HF itself is not deterministic there).</para>
/// <para>One instance holds scratch buffers: use it from one thread at a time.</para>
/// </remarks>
public sealed class LogitsProcessor
{
    private int[] _stamp = [];
    private int _stampGeneration;
    private (float Value, int Id)[] _pairs = [];
    private float[] _heap = [];

    public LogitsProcessor(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public SamplingOptions Options { get; }

    /// <summary>True when the penalty (≠ 1) is applied.</summary>
    public bool AppliesPenalty => Options.RepetitionPenalty != 1.0;

    /// <summary>
    /// Applies, in place, the processors HF would add for these options: the repetition penalty over the distinct ids
    /// of <paramref name="sequence"/> (prompt and generated ids so far), then, when sampling, temperature, top-k and top-p.
    /// </summary>
    public void Process(Span<float> scores, ReadOnlySpan<int> sequence)
    {
        if (AppliesPenalty) ApplyRepetitionPenalty(scores, sequence, (float)Options.RepetitionPenalty);
        if (!Options.DoSample) return;
        if (Options.Temperature != 1.0) TensorPrimitives.Divide(scores, (float)Options.Temperature, scores);
        if (Options.TopK != 0) ApplyTopK(scores, Options.TopK);
        if (Options.TopP < 1.0) ApplyTopP(scores, Options.TopP);
    }

    /// <summary>The probability vector the next token is drawn from: <see cref="Process"/> on a copy, then softmax.</summary>
    public float[] Probabilities(ReadOnlySpan<float> logits, ReadOnlySpan<int> sequence)
    {
        var p = logits.ToArray();
        Process(p, sequence);
        Softmax(p);
        return p;
    }

    /// <summary>
    /// The next id. Greedy: first maximum of the (penalised) scores. Sampling: a draw from the processed softmax.
    /// <paramref name="scratch"/> (length = vocab) receives the processed scores (greedy) or the probabilities (sampling).
    /// <paramref name="rng"/> is needed only when sampling.
    /// </summary>
    public int Next(ReadOnlySpan<float> logits, ReadOnlySpan<int> sequence, Random? rng, Span<float> scratch)
    {
        if (Options.DoSample && rng is null) throw new ArgumentNullException(nameof(rng), "sampling needs a random number generator");
        if (scratch.Length != logits.Length) throw new ArgumentException($"scratch has {scratch.Length} entries for {logits.Length} logits");
        logits.CopyTo(scratch);
        Process(scratch, sequence);
        if (!Options.DoSample) return ArgMax(scratch);
        Softmax(scratch);
        return Draw(scratch, rng!);
    }

    /// <summary>Index of the first maximum (as <c>torch.argmax</c>).</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        if (scores.IsEmpty) throw new ArgumentException("argmax of an empty vector");
        return TensorPrimitives.IndexOfMax(scores);
    }

    /// <summary>
    /// Softmax in place; −∞ entries become exactly 0. Exponentials and their sum are taken in double, so the result is
    /// the correctly rounded probability in all but rare cases: torch's float32 softmax is itself off by up to a few
    /// 1e-6 on rows with thousands of survivors (its float32 sum), and matching its summation order would tie us to
    /// one CPU kernel. After top-k most entries are −∞ and cost nothing.
    /// </summary>
    public static void Softmax(Span<float> scores)
    {
        if (scores.IsEmpty) return;
        float max = TensorPrimitives.Max(scores);
        if (float.IsNegativeInfinity(max) || float.IsNaN(max)) { scores.Fill(float.NaN); return; } // as torch: no valid entry
        double sum = 0;
        foreach (float s in scores)
            if (s > float.NegativeInfinity) sum += Math.Exp((double)s - max);
        for (int i = 0; i < scores.Length; i++)
            scores[i] = scores[i] > float.NegativeInfinity ? (float)(Math.Exp((double)scores[i] - max) / sum) : 0f;
    }

    /// <summary>
    /// One multinomial draw from <paramref name="probs"/> (need not sum to exactly 1): the first index whose running
    /// sum exceeds u·total, u uniform in [0, 1). An index with probability 0 is never returned.
    /// </summary>
    public static int Draw(ReadOnlySpan<float> probs, Random rng)
    {
        double total = 0;
        int last = -1;
        for (int i = 0; i < probs.Length; i++)
        {
            float p = probs[i];
            if (p > 0 && float.IsFinite(p)) { total += p; last = i; }
            else if (!(p >= 0) || float.IsInfinity(p)) throw new ArgumentException($"probability {p} at index {i} is not a finite value ≥ 0");
        }
        if (last < 0) throw new InvalidOperationException("no token has a positive probability");
        double target = rng.NextDouble() * total, run = 0;
        for (int i = 0; i < last; i++)
        {
            run += probs[i];
            if (run > target) return i; // run only grows at positive entries, so i has p > 0
        }
        return last; // rounding left the target at or past the final sum
    }

    /// <summary>HF RepetitionPenaltyLogitsProcessor: each distinct id once, score &lt; 0 → ×penalty, else ÷penalty.</summary>
    private void ApplyRepetitionPenalty(Span<float> scores, ReadOnlySpan<int> sequence, float penalty)
    {
        if (_stamp.Length != scores.Length) { _stamp = new int[scores.Length]; _stampGeneration = 0; }
        if (++_stampGeneration == int.MaxValue) { Array.Clear(_stamp); _stampGeneration = 1; }
        foreach (int id in sequence)
        {
            if ((uint)id >= (uint)scores.Length)
                throw new ArgumentOutOfRangeException(nameof(sequence), $"id {id} outside the vocabulary of {scores.Length}");
            if (_stamp[id] == _stampGeneration) continue; // HF gathers the original score for every occurrence: penalised once
            _stamp[id] = _stampGeneration;
            float s = scores[id];
            scores[id] = s < 0 ? s * penalty : s / penalty;
        }
    }

    /// <summary>HF TopKLogitsWarper: k = min(max(k, 1), vocab); remove scores below the k-th largest (ties stay).</summary>
    private void ApplyTopK(Span<float> scores, int topK)
    {
        int k = Math.Min(Math.Max(topK, 1), scores.Length);
        if (k >= scores.Length) return; // the k-th largest is the minimum: nothing is below it
        float kth = KthLargest(scores, k);
        for (int i = 0; i < scores.Length; i++)
            if (scores[i] < kth) scores[i] = float.NegativeInfinity;
    }

    /// <summary>The k-th largest value (counting duplicates) via a size-k min-heap: O(V log k), no full sort.</summary>
    private float KthLargest(ReadOnlySpan<float> x, int k)
    {
        if (_heap.Length < k) _heap = new float[k];
        var heap = _heap.AsSpan(0, k);
        for (int i = 0; i < k; i++) { heap[i] = x[i]; SiftUp(heap, i); }
        for (int i = k; i < x.Length; i++)
        {
            if (!(x[i] > heap[0])) continue;
            heap[0] = x[i];
            SiftDown(heap, 0);
        }
        return heap[0];
    }

    private static void SiftUp(Span<float> h, int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (!(h[i] < h[parent])) break;
            (h[i], h[parent]) = (h[parent], h[i]);
            i = parent;
        }
    }

    private static void SiftDown(Span<float> h, int i)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < h.Length && h[l] < h[m]) m = l;
            if (r < h.Length && h[r] < h[m]) m = r;
            if (m == i) return;
            (h[i], h[m]) = (h[m], h[i]);
            i = m;
        }
    }

    /// <summary>
    /// HF TopPLogitsWarper: ascending sort, cumulative softmax, remove entries with cumulative ≤ 1 − top_p, keep the
    /// highest always. Entries already −∞ have probability 0 and stay removed, so only the others are sorted (after
    /// top-k that is ~k entries rather than the whole vocabulary).
    /// </summary>
    private void ApplyTopP(Span<float> scores, double topP)
    {
        if (_pairs.Length < scores.Length) _pairs = new (float, int)[scores.Length];
        int n = 0;
        for (int i = 0; i < scores.Length; i++)
            if (scores[i] > float.NegativeInfinity) _pairs[n++] = (scores[i], i);
        if (n <= 1) return;
        var sorted = _pairs.AsSpan(0, n);
        sorted.Sort(static (a, b) => a.Value < b.Value ? -1 : a.Value > b.Value ? 1 : a.Id.CompareTo(b.Id));

        // softmax of the sorted row as torch computes it: float32 exp(x − max), then the running sum (torch's CPU
        // cumsum accumulates in double and stores float32) compared with the float32 threshold
        float max = sorted[^1].Value;
        double sum = 0;
        for (int j = 0; j < n; j++) sum += MathF.Exp(sorted[j].Value - max);
        float threshold = (float)(1.0 - topP);
        double cumulative = 0;
        for (int j = 0; j < n - 1; j++) // the last (highest) is always kept: min_tokens_to_keep = 1
        {
            cumulative += (float)(MathF.Exp(sorted[j].Value - max) / sum);
            if (!((float)cumulative <= threshold)) break; // cumulative only grows: no later entry is removed
            scores[sorted[j].Id] = float.NegativeInfinity;
        }
    }
}
