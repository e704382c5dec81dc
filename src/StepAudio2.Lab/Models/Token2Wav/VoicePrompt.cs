using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Audio.PromptFeatures;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The flow's voice-prompt inputs made from one prompt wav (docs/model.md §7.2): S3 prompt tokens, the CAM++ x-vector and the
/// 24 kHz prompt mel padded/cropped to 2·P frames. Shared between callers when cached: treat the tensors as read-only.
/// </summary>
/// <param name="PromptTokens">S3 tokens p₀..p_{P−1} (0..6560).</param>
/// <param name="Xvector">float32 [1, 192], CAM++ output before the flow's normalisation.</param>
/// <param name="PromptMel">float32 [1, 2P, 80], the 24 kHz mel (docs/model.md §7.5) after <see cref="PromptMel.PadOrCrop"/>.</param>
/// <param name="SourcePath">The prompt wav's full path (or a caller-chosen name for in-memory audio).</param>
public sealed record VoicePromptFeatures(int[] PromptTokens, Tensor Xvector, Tensor PromptMel, string SourcePath)
{
    /// <summary>P, the number of prompt tokens.</summary>
    public int PromptLength => PromptTokens.Length;

    /// <summary>Records the three flow inputs as <c>input.prompt_tokens</c> (int32 [P]), <c>input.xvector</c>, <c>input.prompt_mel</c>.</summary>
    public void RecordInto(Trace trace)
    {
        ArgumentNullException.ThrowIfNull(trace);
        trace.Record("input.prompt_tokens", Tensor.FromArray(PromptTokens, PromptTokens.Length));
        trace.Record("input.xvector", Xvector);
        trace.Record("input.prompt_mel", PromptMel);
    }
}

/// <summary>
/// Prepares voice prompts (docs/model.md §7.2) with the S3 tokenizer and CAM++ ONNX models, mirroring the prompt half of the
/// official <c>Token2wav</c> (<c>_prepare_prompt</c>): 16 kHz channel 0 → S3 log-mel (no pad) → tokens, and → Kaldi
/// fbank + CMN → CAM++; 24 kHz channel mean → 80-bin mel → pad/crop to 2·P. Results are cached per prompt file in memory
/// and, when a cache folder is given, on disk as safetensors (key: full path, length, last-write time and the identity
/// of both model files, so an edited prompt or a swapped model is never served stale).
/// </summary>
public sealed class VoicePrompt : IDisposable
{
    private const string KeyMetadata = "steplab.voice_prompt.key";
    private readonly ConcurrentDictionary<string, VoicePromptFeatures> _memory = new(StringComparer.Ordinal);
    private readonly bool _ownsModels;

    /// <param name="tokenizer">The S3 tokenizer session.</param>
    /// <param name="campPlus">The CAM++ session.</param>
    /// <param name="cacheDirectory">Folder for on-disk cached features (created when needed); null keeps them in memory only.</param>
    /// <param name="ownsModels">Dispose both sessions with this object.</param>
    public VoicePrompt(S3Tokenizer tokenizer, CampPlus campPlus, string? cacheDirectory = null, bool ownsModels = false)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        CampPlus = campPlus ?? throw new ArgumentNullException(nameof(campPlus));
        CacheDirectory = cacheDirectory is null ? null : Path.GetFullPath(cacheDirectory);
        _ownsModels = ownsModels;
    }

    /// <summary>Opens <c>speech_tokenizer_v2_25hz.onnx</c> and <c>campplus.onnx</c> from a <c>token2wav/</c> folder.</summary>
    public static VoicePrompt Open(string token2wavDirectory, string? cacheDirectory = null)
    {
        if (!Directory.Exists(token2wavDirectory)) throw new DirectoryNotFoundException($"no such token2wav folder: {token2wavDirectory}");
        var tokenizer = S3Tokenizer.Open(Path.Combine(token2wavDirectory, S3Tokenizer.FileName));
        try
        {
            return new VoicePrompt(tokenizer, CampPlus.Open(Path.Combine(token2wavDirectory, CampPlus.FileName)), cacheDirectory, ownsModels: true);
        }
        catch
        {
            tokenizer.Dispose();
            throw;
        }
    }

    public S3Tokenizer Tokenizer { get; }
    public CampPlus CampPlus { get; }
    /// <summary>Where features are cached on disk, or null.</summary>
    public string? CacheDirectory { get; }
    /// <summary>Prompts held in the memory cache.</summary>
    public int CachedCount => _memory.Count;
    /// <summary>How many times features were computed from audio (cache misses), for diagnostics.</summary>
    public int ComputeCount => _computeCount;
    private int _computeCount;

    /// <summary>
    /// Features of the prompt wav at <paramref name="path"/>, from the memory cache, the disk cache or computed; recorded
    /// into <paramref name="trace"/> as <c>input.prompt_tokens</c>, <c>input.xvector</c>, <c>input.prompt_mel</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such prompt file.</exception>
    /// <exception cref="AudioFormatException">The prompt is not a readable WAV/AIFF.</exception>
    public VoicePromptFeatures Prepare(string path, Trace? trace = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (!info.Exists) throw new FileNotFoundException($"no such voice prompt: {path}", path);
        string key = $"{full}|{info.Length}|{info.LastWriteTimeUtc.Ticks}|{ModelIdentity(Tokenizer.FilePath)}|{ModelIdentity(CampPlus.FilePath)}";

        var features = _memory.GetOrAdd(key, k => ReadDiskCache(k, full) ?? WriteDiskCache(k, Compute(AudioFile.RequireSamples(AudioFile.Read(full), full), full)));
        if (trace is not null) features.RecordInto(trace);
        return features;
    }

    /// <summary>Computes the features of a decoded clip, uncached (docs/model.md §7.2).</summary>
    /// <exception cref="ArgumentException">The clip is too short for a mel frame (under 25 ms at 16 kHz).</exception>
    public VoicePromptFeatures Compute(AudioClip clip, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(clip);
        Interlocked.Increment(ref _computeCount);
        var wav16 = AudioInput.To16k(clip);
        if (wav16.Length < KaldiFbank.FrameLength)
            throw new ArgumentException($"{sourceName}: a voice prompt needs at least {KaldiFbank.FrameLength} samples at 16 kHz (25 ms), got {wav16.Length}");
        var tokens = Tokenizer.Tokenize(LogMelFrontend.Compute(wav16, pad479: false));
        var xvector = CampPlus.Embed(KaldiFbank.CmnFbank(wav16));

        var mono = clip.MonoMean();
        var wav24 = clip.SampleRate == Mel24k.SampleRate ? mono : Resampler.Resample(mono, clip.SampleRate, Mel24k.SampleRate);
        var mel = PromptMel.PadOrCrop(Mel24k.Compute(wav24), tokens.Length);
        return new VoicePromptFeatures(tokens, xvector, mel, sourceName);
    }

    /// <summary>Drops every in-memory entry (the disk cache stays).</summary>
    public void ClearMemoryCache() => _memory.Clear();

    public void Dispose()
    {
        if (!_ownsModels) return;
        Tokenizer.Dispose();
        CampPlus.Dispose();
    }

    private static string ModelIdentity(string path)
    {
        var info = new FileInfo(path);
        return $"{info.FullName}:{info.Length}:{info.LastWriteTimeUtc.Ticks}";
    }

    private string? CacheFile(string key) => CacheDirectory is null
        ? null
        : Path.Combine(CacheDirectory, "voice-prompt-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32] + ".safetensors");

    // A cache file that is unreadable, from another key (hash collision) or inconsistent is ignored and rewritten:
    // the cache is an optimisation, never a source of errors.
    private VoicePromptFeatures? ReadDiskCache(string key, string sourcePath)
    {
        var file = CacheFile(key);
        if (file is null || !File.Exists(file)) return null;
        try
        {
            using var st = SafetensorsFile.Open(file);
            if (!st.Metadata.TryGetValue(KeyMetadata, out var stored) || stored != key) return null;
            var tokens = Copy(st.Get("input.prompt_tokens"));
            var xvector = Copy(st.Get("input.xvector"));
            var mel = Copy(st.Get("input.prompt_mel"));
            int p = tokens.Shape.Length == 1 ? tokens.Shape[0] : -1;
            if (tokens.DType != DType.I32 || p < 0 || xvector.DType != DType.F32 || !xvector.Shape.SequenceEqual([1, CampPlus.EmbeddingSize])
                || mel.DType != DType.F32 || !mel.Shape.SequenceEqual([1, 2 * p, Mel24k.MelCount]))
                return null;
            var ids = tokens.AsSpan<int>().ToArray();
            if (ids.Any(id => id is < 0 or >= S3Tokenizer.CodebookSize)) return null;
            return new VoicePromptFeatures(ids, xvector, mel, sourcePath);
        }
        catch (LabDataException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private VoicePromptFeatures WriteDiskCache(string key, VoicePromptFeatures features)
    {
        var file = CacheFile(key);
        if (file is null) return features;
        Directory.CreateDirectory(CacheDirectory!);
        // Written atomically (temp file + rename): a concurrent reader sees the old file or the whole new one.
        SafetensorsWriter.Write(file,
        [
            new("input.prompt_tokens", Tensor.FromArray(features.PromptTokens, features.PromptLength)),
            new("input.xvector", features.Xvector),
            new("input.prompt_mel", features.PromptMel),
        ], new Dictionary<string, string> { [KeyMetadata] = key });
        return features;
    }

    private static Tensor Copy(Tensor t) => Tensor.FromBytes(t.ContiguousBytes(), t.DType, t.Shape);
}
