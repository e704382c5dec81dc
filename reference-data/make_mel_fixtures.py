#!/usr/bin/python3
"""Makes reference-data/fixtures/mel/mel_reference.safetensors for the C# log-mel frontend tests (docs/model.md §2.2–§2.7, §7.3.1, §7.5).

Everything comes from steplab_ref/audio.py, the same code that made the tiny dumps' input.mel.N:
* filters.16k: Slaney filter bank sr 16000, n_fft 400, 128 bands (the LLM path, §2.4) [128, 201] f32;
  edges.16k: its 130 band edges in Hz (f64).
* filters.24k: sr 24000, n_fft 1920, 80 bands, f_max 8000 (the flow prompt mel, §7.5) [80, 961] f32; edges.24k (f64).
* s3.wav / s3.mel: a seeded chirp + noise signal of 21 937 samples and its mel without the 479-sample pad (S3 tokenizer, §7.3.1).
* tiny.wav_<N> / tiny.mel_<N>: chunks of N = 0 and 300 samples with the default 479 pad (the "≤ 20 ms → 0 tokens" rows).
* tokens.L / tokens.n: n_audio_tokens(L) for L = 0 … 3000 (§2.6).

Deterministic: fixed seed (numpy RandomState), sorted keys; re-running rewrites identical bytes.
Run: /usr/bin/python3 reference-data/make_mel_fixtures.py
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import audio, safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "mel", "mel_reference.safetensors")


def band_edges(sr, n_mels, f_min, f_max):
    m_lo, m_hi = audio.hz_to_mel(f_min), audio.hz_to_mel(f_max)
    return torch.tensor([audio.mel_to_hz(m_lo + (m_hi - m_lo) * i / (n_mels + 1)) for i in range(n_mels + 2)],
                        dtype=torch.float64)


def main():
    torch.set_num_threads(1)
    t = {}
    t["filters.16k"] = audio.slaney_mel_filters()
    t["edges.16k"] = band_edges(16000, 128, 0.0, 8000.0)
    t["filters.24k"] = audio.slaney_mel_filters(sr=24000, n_fft=1920, n_mels=80, f_min=0.0, f_max=8000.0)
    t["edges.24k"] = band_edges(24000, 80, 0.0, 8000.0)

    rng = np.random.RandomState(20250922)
    n = 21_937
    time = np.arange(n, dtype=np.float64) / 16000.0
    chirp = 0.3 * np.sin(2 * math.pi * (100.0 * time + 0.5 * 3000.0 * time ** 2))  # 100 Hz → 4.2 kHz sweep
    wav = (chirp + 0.02 * rng.standard_normal(n)).astype(np.float32)
    wav[5000:6000] = 0.0  # a silent stretch drives bins to the 1e-10 clamp and the max − 8 floor
    t["s3.wav"] = torch.from_numpy(wav)
    t["s3.mel"] = audio.log_mel_spectrogram(t["s3.wav"], pad_479=False)

    for size in (0, 300):
        w = torch.from_numpy((0.1 * rng.standard_normal(size)).astype(np.float32))
        t[f"tiny.wav_{size}"] = w
        t[f"tiny.mel_{size}"] = audio.log_mel_spectrogram(w)

    lens = list(range(0, 3001))
    t["tokens.L"] = torch.tensor(lens, dtype=torch.int64)
    t["tokens.n"] = torch.tensor([audio.n_audio_tokens(x) for x in lens], dtype=torch.int64)

    safetensors_io.save_file(t, OUT, {"steplab.note": "log-mel frontend reference (make_mel_fixtures.py)"})
    print(OUT, {k: list(v.shape) for k, v in t.items()})


if __name__ == "__main__":
    main()
