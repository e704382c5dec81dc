#!/usr/bin/python3
"""Writes a FULL-SIZE random token2wav folder and a bench input for `steplab token2wav` (never committed).

Usage: /usr/bin/python3 bench/make_token2wav_bench.py OUT_DIR [--codes N (100)] [--prompt P (75)] [--torch-json FILE]

OUT_DIR/token2wav/flow.yaml   the real ../shared/models/step-audio-2-mini/token2wav/flow.yaml (copied)
OUT_DIR/token2wav/flow.pt     CausalMaskedDiffWithXvec built from that yaml by the Python reference
                              (reference-data/steplab_ref/flow.py), PyTorch default init, fixed seed: 512-d conformer
                              6 + 4 blocks, DiT 16 blocks × 512 (docs/model.md §7.6–7.9), official keys (§7.13)
OUT_DIR/token2wav/hift.pt     HiFTGenerator with all defaults (base 512, [8,5,3], docs/model.md §7.10), weight-norm keys,
                              `generator.` prefix, like the official file
OUT_DIR/inputs.safetensors    input.codes [N] and input.prompt_tokens [P] uniform in 0..6560, input.xvector [1,192]
                              N(0,1)·3, input.prompt_mel [1,2P,80] = the real 24 kHz mel of default_female.wav
                              (reference-data/fixtures/prompt_features/mel24k.safetensors, first 2P frames)
With --torch-json, also times the same flow + HiFT in PyTorch (the reference modules, float32, CPU) and writes the times.
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "reference-data")
sys.path.insert(0, REF)
from steplab_ref.flow import load_flow_yaml  # noqa: E402
from steplab_ref.hift import HiFTGenerator  # noqa: E402
from steplab_ref.safetensors_io import load_file, save_file  # noqa: E402

YAML = os.path.join(HERE, "..", "..", "shared", "models", "step-audio-2-mini", "token2wav", "flow.yaml")
SEED = 20251127


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--codes", type=int, default=100)
    ap.add_argument("--prompt", type=int, default=75)
    ap.add_argument("--torch-json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--yaml", default=YAML, help="flow.yaml of the checkpoint (default: ../shared/models/…/token2wav/flow.yaml)")
    ap.add_argument("--mel", default=os.path.join(REF, "fixtures", "prompt_features", "mel24k.safetensors"),
                    help="safetensors with female.mel [1, T, 80] (the prompt's 24 kHz mel)")
    ap.add_argument("--device", default="cpu", help="where --torch-json times PyTorch (cpu, or cuda on the GPU machine)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t2w = os.path.join(a.out, "token2wav")
    os.makedirs(t2w, exist_ok=True)
    torch.manual_seed(SEED)

    shutil.copyfile(a.yaml, os.path.join(t2w, "flow.yaml"))
    flow = load_flow_yaml(a.yaml).eval()
    torch.save({k: v.detach().contiguous() for k, v in flow.state_dict().items()}, os.path.join(t2w, "flow.pt"))
    hift = HiFTGenerator().eval()
    torch.save({"generator." + k: v.detach().contiguous() for k, v in hift.state_dict().items()}, os.path.join(t2w, "hift.pt"))
    n_flow = sum(p.numel() for p in flow.parameters())
    n_hift = sum(p.numel() for p in hift.parameters())
    print(f"flow {n_flow / 1e6:.1f} M parameters, hift {n_hift / 1e6:.1f} M", file=sys.stderr)

    g = torch.Generator().manual_seed(SEED + 1)
    mel = load_file(a.mel)["female.mel"]
    if mel.shape[1] < 2 * a.prompt:
        raise SystemExit(f"the fixture mel has {mel.shape[1]} frames, fewer than 2·P = {2 * a.prompt}")
    inputs = {
        "input.codes": torch.randint(0, 6561, (a.codes,), generator=g, dtype=torch.int64),
        "input.prompt_tokens": torch.randint(0, 6561, (a.prompt,), generator=g, dtype=torch.int64),
        "input.xvector": torch.randn(1, 192, generator=g) * 3,
        "input.prompt_mel": mel[:, : 2 * a.prompt].contiguous(),
    }
    save_file(inputs, os.path.join(a.out, "inputs.safetensors"))

    if a.torch_json:
        times = time_torch(flow, hift, inputs, a.codes, a.prompt, g, a.device)
        json.dump(times, open(a.torch_json, "w"), indent=2)


def time_torch(flow, hift, inputs, n, p, g, dev="cpu", repeats=3):
    """The same work in PyTorch: 10 CFM steps with CFG as a batch of two, then HiFT (NSF noise as an input). On the CPU
    one run; on a GPU (dev "cuda") the modules and inputs moved there, float32, the best of `repeats` after a warm-up,
    the device synchronised before each clock reading."""
    gpu = dev != "cpu"
    if gpu:
        torch.set_default_device(dev)  # the reference modules make their helper tensors (masks, positions) without a device
        flow, hift = flow.to(dev), hift.to(dev)
        for m in flow.modules():  # the rel-position tables are plain attributes (as upstream), not buffers: .to() skips them
            if isinstance(getattr(m, "pe", None), torch.Tensor):
                m.pe = m.pe.to(dev)
        g = torch.Generator(device=dev).manual_seed(SEED + 2)
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    x = {k: v.to(dev) for k, v in inputs.items()}
    frames = 2 * (n + p)
    best = None
    with torch.no_grad():
        for r in range(repeats + 1 if gpu else 1):
            noise = torch.randn(1, 80, frames, generator=g, device=dev)
            sync(); t0 = time.perf_counter()
            mel, _ = flow.inference(x["input.codes"][None].int(), torch.tensor([n], dtype=torch.int32, device=dev),
                                    x["input.prompt_tokens"][None].int(), torch.tensor([p], dtype=torch.int32, device=dev),
                                    x["input.prompt_mel"], torch.tensor([2 * p], dtype=torch.int32, device=dev),
                                    x["input.xvector"], n_timesteps=10, noise=noise)
            sync(); t1 = time.perf_counter()
            hift_noise = torch.randn(1, 480 * mel.shape[2], 9, generator=g, device=dev)
            f0, s = hift.source(mel, hift_noise)
            wav = hift.decode(mel, s)
            sync(); t2 = time.perf_counter()
            if (r > 0 or not gpu) and (best is None or t2 - t0 < best["torch_total_s"]):
                best = {"torch_flow_s": t1 - t0, "torch_hift_s": t2 - t1, "torch_total_s": t2 - t0}
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), **best, "samples": int(wav.shape[-1])}
    if gpu:
        torch.set_default_device("cpu")
        result.update(device=torch.cuda.get_device_name(0), precision="float32", repeats=repeats)
    return result


if __name__ == "__main__":
    main()
