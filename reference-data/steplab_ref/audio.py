"""Audio frontend of the LLM path (docs/model.md §2): loading, resampling, 25 s chunking, 128-bin log-mel."""
import math

import numpy as np
import torch

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 400_000  # 25 s
N_FFT, HOP, N_MELS = 400, 160, 128


def load_audio_16k(path: str) -> torch.Tensor:
    """Channel 0 as float32 in [-1, 1], resampled to 16 kHz with torchaudio's default sinc resampler (docs/model.md §2.1)."""
    import torchaudio
    wav, sr = torchaudio.load(path)  # sox backend: reads WAV, AIFF and AIFF-C 'twos'
    wav = wav[0]
    if sr != SAMPLE_RATE:
        # transforms.Resample builds its kernel in float64 (stored float32) like the official load_audio;
        # functional.resample would build it in float32 and differ by up to 1e-5.
        wav = torchaudio.transforms.Resample(sr, SAMPLE_RATE)(wav)
    return wav.to(torch.float32)


def hz_to_mel(f):
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep


def mel_to_hz(m):
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return f_sp * m if m < min_log_mel else min_log_hz * math.exp(logstep * (m - min_log_mel))


def slaney_mel_filters(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, f_min=0.0, f_max=None) -> torch.Tensor:
    """librosa.filters.mel defaults (Slaney scale and area norm) from the formula, float64 → float32 [n_mels, n_fft//2+1]."""
    f_max = sr / 2 if f_max is None else f_max
    n_bins = n_fft // 2 + 1
    fft_freqs = np.arange(n_bins, dtype=np.float64) * sr / n_fft
    m_lo, m_hi = hz_to_mel(f_min), hz_to_mel(f_max)
    edges = np.array([mel_to_hz(m_lo + (m_hi - m_lo) * i / (n_mels + 1)) for i in range(n_mels + 2)])
    w = np.zeros((n_mels, n_bins), dtype=np.float64)
    for i in range(n_mels):
        lower = (fft_freqs - edges[i]) / (edges[i + 1] - edges[i])
        upper = (edges[i + 2] - fft_freqs) / (edges[i + 2] - edges[i + 1])
        w[i] = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[i + 2] - edges[i]))
    return torch.from_numpy(w.astype(np.float32))


def log_mel_spectrogram(x: torch.Tensor, pad_479: bool = True) -> torch.Tensor:
    """[N] float32 → [128, L] (docs/model.md §2.3–2.5); pad_479=False gives the S3-tokenizer variant (docs/model.md §7.3.1)."""
    if pad_479:
        x = torch.nn.functional.pad(x, (0, 479))
    window = torch.hann_window(N_FFT, periodic=True, dtype=x.dtype)  # float32 input → the reference; float64 → a cross-check
    stft = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = slaney_mel_filters().to(power.dtype) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def chunk_audio(x: torch.Tensor):
    """25 s chunks; the last holds the remainder (docs/model.md §2.2)."""
    return [x[i:i + CHUNK_SAMPLES] for i in range(0, max(len(x), 1), CHUNK_SAMPLES)]


def n_audio_tokens(mel_len: int) -> int:
    """Number of <audio_patch> placeholders for a chunk with L mel frames (docs/model.md §2.6)."""
    x_len = mel_len - 2
    e = ((x_len + 1) // 2) // 2
    return (e + 2 * 1 - 3) // 2 + 1


def batch_mels(mels):
    """Right-pad chunk mels with zeros to the longest; lengths passed to the encoder are L − 2, int32 (the official
    `padding_mels`; this is the forward's `wav_lens` argument)."""
    t_pad = max(m.shape[1] for m in mels)
    batch = torch.zeros(len(mels), mels[0].shape[0], t_pad, dtype=torch.float32)
    for i, m in enumerate(mels):
        batch[i, :, :m.shape[1]] = m
    lens = torch.tensor([m.shape[1] - 2 for m in mels], dtype=torch.int32)
    return batch, lens
