#!/usr/bin/python3
"""Cross-implementation dumps and planted porting bugs: what `steplab compare`'s default tolerance is calibrated on.

The same tiny checkpoint and the same inputs (taken from the reference dumps, so no audio decoding is needed) run
through `steplab_ref` computed *another way* — each a correct float32 port whose summation order differs from the
reference — and through ports with one planted bug each. Every dump has the official module paths and shapes.

    /usr/bin/python3 make_crossimpl.py [--variants float64,unfold,threads1] [--bugs all|none|NAME,...] [--device cpu|cuda]
                                       [--out DIR]

Correct variants (committed under tiny/crossimpl/, `<case>-<variant>.safetensors`, case = audio-short | llm-short):
* float64   — the whole forward in float64, cast to float32 at the end (mel too);
* unfold    — every Conv1d as `F.unfold` + matmul, every Linear as two half-K matmuls summed (another summation order);
* threads1  — torch.set_num_threads(1) (other BLAS blocking than the default thread count);
* cuda      — on a GPU, float32 with TF32 off (cuBLAS/cuDNN kernels; made on the device machine, see bench/gpu).
Planted bugs (written to --out at test time, not committed; `<case>-bug-<name>.safetensors`), each a real porting
mistake with the module where it first shows: see BUGS below. Plus `scale1pct:<path>`: one module's output × 1.01,
propagated (the "1 % error in any one module" acceptance).

Deterministic for a given torch build and thread count.
"""
import argparse
import contextlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import audio, safetensors_io  # noqa: E402
from steplab_ref import model as refmodel  # noqa: E402
from steplab_ref.dumper import ModuleDumper  # noqa: E402
from steplab_ref.patch import Patch  # noqa: E402

_GELU = F.gelu  # the exact GELU, kept before any patch replaces the module attribute
HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "tiny")


def load_model(device):
    return refmodel.from_checkpoint(TINY).to(device)


def inputs(case):
    d = safetensors_io.load_file(os.path.join(TINY, "dumps", f"{case}.safetensors"))
    return d


# ------------------------------------------------------------------------------------------ ways of computing

@contextlib.contextmanager
def unfold_convs_split_linears():
    """Conv1d through unfold + matmul; Linear as the sum of two half-K products (both reorder the sums)."""
    conv_fwd, lin_fwd = torch.nn.Conv1d.forward, torch.nn.Linear.forward

    def conv(self, x):
        (k,), (s,), (p,), (dl,) = self.kernel_size, self.stride, self.padding, self.dilation
        cols = F.unfold(x.unsqueeze(-1), (k, 1), dilation=(dl, 1), padding=(p, 0), stride=(s, 1))  # [B, Cin·K, T']
        y = self.weight.reshape(self.out_channels, -1) @ cols
        return y + self.bias[:, None] if self.bias is not None else y

    def lin(self, x):
        h = x.shape[-1] // 2
        y = x[..., :h] @ self.weight[:, :h].t() + x[..., h:] @ self.weight[:, h:].t()
        return y + self.bias if self.bias is not None else y

    torch.nn.Conv1d.forward, torch.nn.Linear.forward = conv, lin
    try:
        yield
    finally:
        torch.nn.Conv1d.forward, torch.nn.Linear.forward = conv_fwd, lin_fwd


@contextlib.contextmanager
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# ------------------------------------------------------------------------------------------ planted bugs

def _attn_scale_q_only(self, x, mask_bias):
    """Whisper attention with the d^-1/4 split lost: q scaled by d^-1/4, k not (scores off by d^1/4)."""
    q, k, v = self.query(x), self.key(x), self.value(x)
    b, t, d = q.shape
    scale = (d // self.n_head) ** -0.25
    q = q.view(b, t, self.n_head, -1).permute(0, 2, 1, 3) * scale
    k = k.view(b, t, self.n_head, -1).permute(0, 2, 3, 1)
    v = v.view(b, t, self.n_head, -1).permute(0, 2, 1, 3)
    qk = (q @ k + mask_bias).float()
    o = (F.softmax(qk, dim=-1) @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
    return self.out(o), qk


def _no_pad_mask(lengths, t_pad):
    return torch.zeros(len(lengths), 1, 1, (t_pad - 1) // 2 + 1)


def _mask_from_one(lengths, t_pad):
    """The subsampled mask always taken from frame 1 instead of (T+1) mod 2 (wrong by one frame for odd mel lengths,
    which the short clip has: L = 309)."""
    valid = torch.arange(t_pad + 1)[None, :] < lengths[:, None]
    valid = valid[:, 1::2][:, : (t_pad - 1) // 2 + 1]
    bias = torch.zeros(valid.shape, dtype=torch.float32).masked_fill(~valid, -1e10)
    return bias[:, None, None, :]


def _rope_interleaved(x):
    """GPT-J style rotation (pairs 2i, 2i+1) where Qwen2 rotates halves."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def _gqa_modulo(self, x, position_embeddings):
    """Query head h reads KV head h mod Hkv instead of h / (H/Hkv)."""
    b, t, _ = x.shape
    cos, sin = position_embeddings[0][:, None], position_embeddings[1][:, None]
    q = self.q_proj(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2)
    k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
    v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
    q = q * cos + refmodel.rotate_half(q) * sin
    k = k * cos + refmodel.rotate_half(k) * sin
    rep = self.n_head // self.n_kv
    k, v = k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
    causal = torch.full((t, t), float("-inf")).triu(1)
    o = (F.softmax(scores + causal, dim=-1) @ v).transpose(1, 2).reshape(b, t, -1)
    return self.o_proj(o), None


def _rms_eps(self, x):
    x = x.float()
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-2))


# name → (case, first path where the bug shows, how to plant it on model m)
BUGS = {
    "gelu-adaptor": ("audio-short", "adapter.relu", lambda m: Patch(m.adapter, "relu", torch.nn.GELU())),
    "qk-scale-split-lost": ("audio-short", "encoder.blocks.0.attn.out",
                            lambda m: Patch(refmodel.MultiHeadAttention, "forward", _attn_scale_q_only)),
    "no-pad-mask": ("audio-short", "encoder.blocks.0.attn.out", lambda m: Patch(refmodel, "make_pad_mask_bias", _no_pad_mask)),
    "mask-phase": ("audio-short", "encoder.blocks.0.attn.out", lambda m: Patch(refmodel, "make_pad_mask_bias", _mask_from_one)),
    "transposed-query-weight": ("audio-short", "encoder.blocks.0.attn.query",
                                lambda m: Patch(m.encoder.blocks[0].attn.query, "weight",
                                                torch.nn.Parameter(m.encoder.blocks[0].attn.query.weight.t().contiguous()))),
    "exact-gelu-as-tanh": ("audio-short", "encoder.conv2",
                           lambda m: Patch(refmodel.F, "gelu", lambda x, approximate="none": _GELU(x, approximate="tanh"))),
    "rope-interleaved": ("llm-short", "model.layers.0.self_attn.o_proj", lambda m: Patch(refmodel, "rotate_half", _rope_interleaved)),
    "gqa-modulo": ("llm-short", "model.layers.0.self_attn.o_proj", lambda m: Patch(refmodel.Qwen2Attention, "forward", _gqa_modulo)),
    "rmsnorm-eps": ("llm-short", "model.layers.0.input_layernorm", lambda m: Patch(refmodel.Qwen2RMSNorm, "forward", _rms_eps)),
    "rope-theta-1e4": ("llm-short", "model.rotary_emb", lambda m: Patch(m.model.rotary_emb, "theta", 10000.0)),
}


@contextlib.contextmanager
def scale_output(model, path, factor=1.01):
    """One module's output multiplied by `factor`, propagated to everything downstream."""
    module = dict(model.named_modules())[path]

    def hook(mod, inp, out):
        if isinstance(out, tuple):
            return (out[0] * factor,) + tuple(out[1:])
        return out * factor

    h = module.register_forward_hook(hook)
    try:
        yield
    finally:
        h.remove()


# ------------------------------------------------------------------------------------------ running a case

def run_case(model, case, device, dtype=torch.float32):
    """The case's forward with every module hooked; returns (tensors, order) with official names and shapes."""
    src = inputs(case)
    mels = [src[f"input.mel.{i}"] for i in range(sum(1 for k in src if k.startswith("input.mel.")))]
    if dtype == torch.float64 and "input.wav" in src:  # recompute the mel itself in float64
        mels = [audio.log_mel_spectrogram(c.double()).float() for c in audio.chunk_audio(src["input.wav"])]
    batch, lens = audio.batch_mels(mels)
    m = model.to(dtype)
    capture = None if case.startswith("audio") else ["input.*", "model.*", "lm_head.last"]
    with ModuleDumper(m, capture) as d, torch.no_grad():
        for k in ("input.wav", "input.ids"):
            if k in src:
                d.record(k, src[k])
        for i, mel in enumerate(mels):
            d.record(f"input.mel.{i}", mel)
        d.record("input.wav_lens", lens)
        if case.startswith("audio"):
            m.encode_audio(batch.to(device, dtype), lens.to(device))
        else:
            logits = m(src["input.ids"].to(device), batch.to(device, dtype), lens.to(device))
            d.record("lm_head.last", logits[0, -1])
    model.to(torch.float32)
    return d.tensors, list(d.order)


def save(tensors, order, path, note):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safetensors_io.save_file({k: tensors[k] for k in order}, path,
                             metadata={"steplab.order": json.dumps(order), "steplab.note": note})


CASES = ("audio-short", "llm-short")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="float64,unfold,threads1")
    ap.add_argument("--bugs", default="none", help="all | none | comma list of BUGS names and scale1pct:<module path>")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=os.path.join(TINY, "crossimpl"))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = load_model(device)

    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        ways = {"float64": (contextlib.nullcontext, torch.float64), "unfold": (unfold_convs_split_linears, torch.float32),
                "threads1": (one_thread, torch.float32), "cuda": (contextlib.nullcontext, torch.float32)}
        make, dtype = ways[v]
        for case in CASES:
            with make():
                tensors, order = run_case(model, case, device, dtype)
            note = f"make_crossimpl.py: {case}, variant {v} (torch {torch.__version__}, {device})"
            save(tensors, order, os.path.join(args.out, f"{case}-{v}.safetensors"), note)
            print(f"wrote {case}-{v}: {len(order)} tensors")

    bugs = []
    for b in args.bugs.split(","):
        if b == "all":
            bugs += list(BUGS)
        elif b == "scale1pct:all":  # every module of the encoder, adaptor and LLM whose output a dump records
            bugs += [f"scale1pct:{p}" for p in module_paths(model)]
        elif b and b != "none":
            bugs.append(b)
    manifest = {}
    for b in bugs:
        if b.startswith("scale1pct:"):
            path = b.split(":", 1)[1]
            case = "llm-short" if path.startswith("model.") else "audio-short"
            plant = lambda m, p=path: scale_output(m, p)  # noqa: E731
            name, first = "scale1pct-" + path, path
        else:
            case, first, make = BUGS[b]
            plant, name = make, "bug-" + b
        with plant(model):
            tensors, order = run_case(model, case, device)
        file = f"{case}-{name}.safetensors"
        save(tensors, order, os.path.join(args.out, file), f"planted: {b}")
        manifest[file] = {"bug": b, "reference": f"{case}.safetensors", "first_failure": first}
    if manifest:
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        print(f"wrote {len(manifest)} planted-bug dumps and manifest.json to {args.out}")


def module_paths(model):
    """Module paths of the encoder, adaptor and decoder whose outputs the reference dumps record (modules never called,
    such as the positional-embedding table read as a weight, and containers are left out)."""
    recorded = set(inputs("audio-short")) | set(inputs("llm-short"))
    return [name for name, _ in model.named_modules() if name in recorded]


if __name__ == "__main__":
    main()
