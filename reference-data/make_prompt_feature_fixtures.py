#!/usr/bin/python3
"""Makes reference-data/fixtures/prompt_features/*.safetensors for the token2wav prompt feature tests (docs/model.md §7.4, §7.5).

fbank.safetensors (docs/model.md §7.4), each case <c> ∈ {female, synth}:
* <c>.wav16k: the 16 kHz float32 input in [−1, 1] (the C# test feeds exactly these samples).
* <c>.fbank: torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=80, dither=0, sample_frequency=16000) [T, 80].
* <c>.cmn: <c>.fbank minus its per-bin mean over time (the CAM++ input).
* <c>.fbank64: the same fbank call on the float64 waveform (float64 output, floor still float32 eps).
  female = the first 4 s of /work/shared/audio/default_female.wav, channel 0, resampled 48 → 16 kHz
  (torchaudio.transforms.Resample); synth = a seeded tone + noise signal with exact-zero and very quiet stretches,
  so that many mel energies fall below the float-epsilon floor.

mel24k.safetensors (docs/model.md §7.5):
* female.wav24k: the first 4 s of default_female.wav, channel mean, resampled 48 → 24 kHz.
* female.mel: [1, T, 80] from the spec recipe written here with torch.stft (reflect pad 720, center=False,
  n_fft 1920, hop 480, periodic Hann, sqrt(|X|² + 1e−9), Slaney bank sr 24000/80 bands/f_max 8000, ln(max(x, 1e−5))).

Deterministic: fixed seed, single thread; re-running rewrites identical bytes.
Run: /usr/bin/python3 reference-data/make_prompt_feature_fixtures.py
"""
import math
import os
import sys

import numpy as np
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import audio, safetensors_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures", "prompt_features")
WAV = os.path.join(HERE, "..", "..", "shared", "audio", "default_female.wav")
if not os.path.exists(WAV):
    WAV = "/work/shared/audio/default_female.wav"


def fbank(wav16k: torch.Tensor) -> torch.Tensor:
    return kaldi.fbank(wav16k[None], num_mel_bins=80, dither=0.0, sample_frequency=16000)


def mel24k(wav24k: torch.Tensor) -> torch.Tensor:
    n_fft, hop = 1920, 480
    pad = (n_fft - hop) // 2
    y = torch.nn.functional.pad(wav24k[None, None], (pad, pad), mode="reflect")[0, 0]
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32)
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=n_fft, window=window, center=False,
                      return_complex=True)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    bank = audio.slaney_mel_filters(sr=24000, n_fft=n_fft, n_mels=80, f_min=0.0, f_max=8000.0)
    mel = torch.matmul(bank, mag)
    return torch.log(torch.clamp(mel, min=1e-5)).T.unsqueeze(0).contiguous()  # [1, T, 80]


def main():
    torch.set_num_threads(1)
    raw, sr = torchaudio.load(WAV)
    assert sr == 48000, sr

    fb = {}
    wav16 = torchaudio.transforms.Resample(sr, 16000)(raw[0]).to(torch.float32)[:4 * 16000].contiguous()
    rng = np.random.RandomState(20251125)
    n = 24_321
    t = np.arange(n, dtype=np.float64) / 16000.0
    synth = 0.25 * np.sin(2 * math.pi * 440.0 * t) + 0.1 * np.sin(2 * math.pi * 3100.0 * t) + 0.01 * rng.standard_normal(n)
    synth[4000:9000] = 0.0  # exact silence: every energy sits on the epsilon floor
    synth[14000:17000] = 1e-6 * rng.standard_normal(3000)  # near silence: energies straddle the floor
    synth = torch.from_numpy(synth.astype(np.float32))
    for name, w in (("female", wav16), ("synth", synth)):
        f = fbank(w)
        fb[f"{name}.wav16k"] = w
        fb[f"{name}.fbank"] = f.contiguous()
        fb[f"{name}.cmn"] = (f - f.mean(dim=0, keepdim=True)).contiguous()
        # The same call in float64 (the floor stays float32 eps): float32 rounding alone moves low-energy bins of the
        # float32 output by up to ~4e-4, so this is the tight target for a float64 implementation.
        fb[f"{name}.fbank64"] = fbank(w.double()).contiguous()

    mono = raw.mean(dim=0)
    wav24 = torchaudio.transforms.Resample(sr, 24000)(mono).to(torch.float32)[:4 * 24000].contiguous()
    mel = {"female.wav24k": wav24, "female.mel": mel24k(wav24)}

    os.makedirs(OUT_DIR, exist_ok=True)
    meta = {"source": "make_prompt_feature_fixtures.py", "torchaudio": torchaudio.__version__}
    safetensors_io.save_file(dict(sorted(fb.items())), os.path.join(OUT_DIR, "fbank.safetensors"), meta)
    safetensors_io.save_file(dict(sorted(mel.items())), os.path.join(OUT_DIR, "mel24k.safetensors"), meta)
    for k, v in sorted({**fb, **mel}.items()):
        print(k, tuple(v.shape), v.dtype)
    floor = math.log(torch.finfo(torch.float32).eps)
    print("synth floor fraction", (fb["synth.fbank"] == floor).float().mean().item())


if __name__ == "__main__":
    main()
