"""Writes a tiny HiFT vocoder checkpoint and its reference dump (docs/model.md §7.10, §7.13).

Outputs (deterministic: fixed seed; torch.save's zip carries no timestamps, so re-running rewrites identical bytes):
  tiny/token2wav/hift.pt                    state dict, keys `generator.*`, legacy weight-norm keys weight_g/weight_v
  tiny/token2wav/hift_parametrizations.pt   same tensors, new-style `parametrizations.weight.original0/1` keys
  tiny/dumps/hift.safetensors               inputs (`input.mel`, `input.hift_noise`) and module outputs by path

Same structure as the real vocoder (upsample rates [8, 5, 3], 480 samples per frame, n_fft 16 / hop 4), small widths:
base_channels 32 (stages 16/8/4), F0-predictor cond_channels 16. Weight-norm gains are perturbed away from ‖v‖ and the
Snake alphas away from 1 so that loading must really fold g·v/‖v‖ and apply per-channel alphas.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from steplab_ref.hift import HiFTGenerator, to_parametrizations  # noqa: E402
from steplab_ref.safetensors_io import save_file  # noqa: E402

T = 40
SEED = 20251125


def make_model():
    torch.manual_seed(SEED)
    m = HiFTGenerator(base_channels=32, cond_channels=16).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(0.5 + torch.rand_like(p))
            elif name.endswith("alpha"):
                p.copy_(0.3 + 1.4 * torch.rand_like(p))
    return m


def spread_f0(m, mel):
    """Rescales the classifier so f0 spans about −20..250 Hz before |·|: a few frames fall under the 10 Hz voicing
    threshold, so both NSF branches (sine and unvoiced noise) are exercised."""
    with torch.no_grad():
        h = m.f0_predictor.condnet(mel)[0].T  # [T, cond]
        w = m.f0_predictor.classifier.weight[0]
        z = h @ w
        a = 270.0 / float(z.max() - z.min())
        m.f0_predictor.classifier.weight.mul_(a)
        m.f0_predictor.classifier.bias.fill_(-20.0 - a * float(z.min()))


def make_mel(gen):
    x = torch.randn(1, 80, T + 8, generator=gen)
    k = torch.ones(80, 1, 9) / 9.0
    x = torch.nn.functional.conv1d(x, k, groups=80)  # smooth along time
    return (x * 4.0 - 5.0).contiguous()


def main():
    out_ckpt = os.path.join(HERE, "tiny", "token2wav")
    out_dump = os.path.join(HERE, "tiny", "dumps")
    os.makedirs(out_ckpt, exist_ok=True)
    os.makedirs(out_dump, exist_ok=True)

    m = make_model()
    gen = torch.Generator().manual_seed(SEED + 1)
    mel = make_mel(gen)
    spread_f0(m, mel)
    noise = torch.randn(1, 480 * T, m.nb_harmonics + 1, generator=gen)

    dump = {"input.mel": mel, "input.hift_noise": noise}
    hooked = ["f0_predictor", "m_source", "conv_pre", "conv_post"]
    hooked += [f"ups.{i}" for i in range(3)] + [f"source_downs.{i}" for i in range(3)]
    hooked += [f"source_resblocks.{i}" for i in range(3)] + [f"resblocks.{i}" for i in range(9)]
    modules = dict(m.named_modules())
    for name in hooked:
        def hook(mod, inp, out, name=name):
            dump["hift." + name] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        modules[name].register_forward_hook(hook)

    torch.manual_seed(SEED + 2)  # SineGen2's (ineffective) random initial phase
    with torch.no_grad():
        f0, s = m.source(mel, noise)
        dump["hift.source_stft"] = m.source_stft(s).clone()
        wav = m.decode(mel, s)
    dump["hift"] = wav
    f0v = f0.flatten()
    print(f"f0 min {f0v.min():.2f} max {f0v.max():.2f} unvoiced {(f0v <= 10).sum().item()}/{T}; "
          f"wav absmax {wav.abs().max():.4f} rms {wav.pow(2).mean().sqrt():.4f}")

    sd = {"generator." + k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
    torch.save(sd, os.path.join(out_ckpt, "hift.pt"))
    torch.save(to_parametrizations(sd), os.path.join(out_ckpt, "hift_parametrizations.pt"))
    save_file({k: v.contiguous() for k, v in dump.items()}, os.path.join(out_dump, "hift.safetensors"),
              metadata={"T": T, "seed": SEED})
    for k in sorted(dump):
        print(f"  {k} {list(dump[k].shape)}")


if __name__ == "__main__":
    main()
