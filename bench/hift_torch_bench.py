"""PyTorch timing of the full-size HiFT (reference modules, float32, default init) on T mel frames, per module.

Per-module wall seconds come from forward pre-hooks / hooks on the same module paths the C# bench reports
(hift.f0_predictor, hift.m_source, hift.conv_pre, hift.ups.N, hift.source_downs.N, hift.source_resblocks.N,
hift.resblocks.N, hift.conv_post); one warm-up call, then REPS timed calls of source + decode (median per module).
Usage: /usr/bin/python3 bench/hift_torch_bench.py OUT.json [--frames 200] [--reps 1] [--threads 2]
"""
import argparse, json, os, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference-data"))
from steplab_ref.hift import HiFTGenerator  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    hift = HiFTGenerator().eval()
    names = ["f0_predictor", "m_source", "conv_pre", "conv_post"] + [f"{k}.{i}" for k, n in
             (("ups", 3), ("source_downs", 3), ("source_resblocks", 3), ("resblocks", 9)) for i in range(n)]
    mods = dict(hift.named_modules())
    times, start = {}, {}
    for n in names:
        mods[n].register_forward_pre_hook(lambda m, i, n=n: start.__setitem__(n, time.perf_counter()))
        mods[n].register_forward_hook(lambda m, i, o, n=n: times.setdefault(n, []).append(time.perf_counter() - start[n]))
    g = torch.Generator().manual_seed(1)
    mel = torch.rand(1, 80, a.frames, generator=g) * 8 - 10
    noise = torch.randn(1, 480 * a.frames, 9, generator=g)
    totals = []
    with torch.no_grad():
        for r in range(a.reps + 1):
            if r == 1: times.clear()
            t0 = time.perf_counter()
            _, s = hift.source(mel, noise)
            hift.decode(mel, s)
            totals.append(time.perf_counter() - t0)
    med = lambda v: sorted(v)[len(v) // 2]
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "frames": a.frames, "reps": a.reps,
           "torch_total_ms": 1000 * med(totals[1:]), "loadavg": open("/proc/loadavg").read().split()[:3],
           "modules_ms": {"hift." + n: round(1000 * med(times[n]), 2) for n in names}}
    json.dump(out, open(a.out, "w"), indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
