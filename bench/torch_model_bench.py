#!/usr/bin/python3
"""PyTorch side of the model benchmarks (same cases as `StepAudio2.Lab.Bench model`): mel of 30 s and one full-size
encoder block, using the spec-written reference modules (reference-data/steplab_ref). Prints JSON."""
import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference-data"))
from steplab_ref import audio  # noqa: E402
from steplab_ref.model import ResidualAttentionBlock, make_pad_mask_bias  # noqa: E402


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def speech(seconds):
    shared = os.path.join(HERE, "..", "..", "shared", "audio")
    parts = torch.cat([audio.load_audio_16k(os.path.join(shared, f)) for f in
                       ("mmau_test.wav", "multi-turn-round1-zh.wav", "music_playing_followed_by_a_woman_speaking.wav")])
    n = seconds * 16000
    return parts.repeat(n // len(parts) + 1)[:n].contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    entries = []
    want = lambda n: args.only is None or args.only.lower() in n  # noqa: E731
    with torch.no_grad():
        if want("mel_30s"):
            wav = speech(30)
            med, mn = timed(lambda: [audio.log_mel_spectrogram(c) for c in audio.chunk_audio(wav)], runs=10, warmup=2)
            entries.append({"name": "mel_30s", "torch_ms": med, "torch_min_ms": mn})
        if want("encoder_layer"):
            torch.manual_seed(0)
            block = ResidualAttentionBlock(1280, 20).eval()
            x = torch.rand(1, 1500, 1280) - 0.5
            mask = make_pad_mask_bias(torch.tensor([3000]), 3000)
            med, mn = timed(lambda: block(x, mask), runs=5)
            entries.append({"name": "encoder_layer", "torch_ms": med, "torch_min_ms": mn})
    print(json.dumps({"suite": "model", "torch": torch.__version__, "threads": args.threads, "entries": entries}, indent=2))


if __name__ == "__main__":
    main()
