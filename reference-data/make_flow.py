#!/usr/bin/python3
"""Writes a tiny token2wav flow (docs/model.md §7.6–7.9, §7.13), its flow.yaml, and a flow + HiFT reference dump.

Run: /usr/bin/python3 reference-data/make_flow.py   (deterministic: fixed seeds, one thread; torch.save's zip and our
safetensors writer carry no timestamps, so re-running rewrites identical bytes).

Outputs
  tiny/token2wav/flow.yaml   same syntax, tags and keys as the official token2wav/flow.yaml, tiny values:
                             flow input_size 64, output_size 80, spk_embed_dim 192, vocab_size 6561; encoder
                             input/output_size 64, attention_heads 4 (d_k 16), linear_units 128, pre_lookahead_len 3,
                             num_blocks 2, num_up_blocks 2, up_stride 2, up_scale_factor 2; CFM inference_cfg_rate 0.7;
                             DiT in_channels 320, out_channels 80, hidden_size 64, depth 2, num_heads 4, head_dim 16,
                             mlp_ratio 4.0 (MLP 256; time-embedding frequency size stays 256; adaLN 9·64 = 576).
  tiny/token2wav/flow.pt     torch.save of the state dict (OrderedDict, float32, no prefix, official keys of §7.13,
                             asserted here key by key and shape by shape against the §7.13 table at tiny widths).
  tiny/dumps/token2wav-short.safetensors   the dump below (metadata `steplab.order` = execution order).

Parameters are drawn away from PyTorch's init wherever init would hide a bug: every LayerNorm weight is 1 + noise and
every bias non-zero (incl. q_norm/k_norm, conv.block.3, after_norm), pos_bias_u/v ~ N(0, 0.5²), the adaLN and
final-layer weights and biases non-zero (DiT code usually zero-inits them), the conformer linear_q/linear_k scaled so
the softmax stays soft. (The generated mel of a random flow is not speech-like: mean ≈ 0, std ≈ 1.6.)

Dump `token2wav-short` (P = 12 prompt tokens, N = 20 codes; flow sequence T = P + N = 32 tokens → 2T = 64 frames):
  inputs
    input.codes           [20] int64        speech codes, all in 0..6560 (incl. 0 and 6560)
    input.prompt_tokens   [12] int64        prompt tokens, 0..6560
    input.xvector         [1, 192] f32      CAM++-like vector BEFORE normalisation (norm ≈ 11)
    input.prompt_mel      [1, 24, 80] f32   real 24 kHz log-mel frames 40..63 of default_female.wav
                                            (fixtures/prompt_features/mel24k.safetensors `female.mel`)
    input.noise           [1, 80, 64] f32   CFM initial noise z, N(0,1)
    input.hift_noise      [1, 19200, 9] f32 SineGen2's N(0,1) draws (480·2N samples × 9 harmonics)
  flow, in execution order (module outputs by official path; a tuple output stores its first element)
    flow.spk_embed_affine_layer         [1, 80]       W·normalize(e) + b (runs first, as upstream)
    flow.input_embedding                [1, 32, 64]   Emb(max([p; c], 0)) (before the all-ones mask product)
    flow.encoder.embed                  [1, 32, 64]   (Linear, LayerNorm)·sqrt(64): x of (x, pos_emb, mask)
    flow.encoder.pre_lookahead_layer    [1, 32, 64]
    flow.encoder.encoders.{0,1}         [1, 32, 64]   x of (x, mask, cache, cache)
    flow.encoder.up_layer               [1, 64, 64]   channels-first [1, C, 2T]: y of (y, lengths)
    flow.encoder.up_embed               [1, 64, 64]   [1, 2T, C]
    flow.encoder.up_encoders.{0,1}      [1, 64, 64]
    flow.encoder                        [1, 64, 64]   after_norm output (y of (y, masks))
    flow.encoder_proj                   [1, 64, 80]   μ, time-major
    flow.decoder.estimator.step.{0..9}  [2, 80, 64]   DiT output at Euler step K for both CFG rows
                                                      (row 0 = (x, μ, s, cond), row 1 = (x, 0, 0, 0)), t = τ_K (float32)
    flow.decoder                        [1, 80, 64]   final x, prompt frames still in
    flow                                [1, 80, 40]   generated mel = flow.decoder[:, :, 24:]
  HiFT on `flow` with input.hift_noise, using the existing tiny vocoder tiny/token2wav/hift.pt (make_hift.py) and the
  same paths as tiny/dumps/hift.safetensors:
    hift.f0_predictor [1, 40]; hift.m_source [1, 19200, 1]; hift.source_stft [1, 18, 4801]; hift.conv_pre [1, 32, 40];
    hift.ups.{0,1,2} [1, 16, 320] / [1, 8, 1600] / [1, 4, 4800]; hift.source_downs.{0,1,2} and
    hift.source_resblocks.{0,1,2} [1, 16, 320] / [1, 8, 1600] / [1, 4, 4801]; hift.resblocks.{0..8} (3 per stage, same
    shapes); hift.conv_post [1, 18, 4801]; hift [1, 19200] (clamped waveform).
  The SineGen2 random initial phase uses torch.manual_seed(SEED + 2) right before the HiFT run (it has no effect).

Self-checks (asserts, kept in the script): state-dict keys/shapes = §7.13 table at tiny widths; flow.yaml has exactly the
official file's tags and key tree; flow.pt reloads strictly; rel-pos attention = a direct float64 score[i, j] =
((q_i+u)·k_j + (q_i+v)·P_{i−j})/sqrt(d_k) (and ≠ the j−i variant); positional rows = sin/cos(r·ω) in float64;
pre-lookahead receptive field t−2..t+3; up_layer = conv of the nearest ×2 repeat; time embedding cos first;
τ = TAU_HEX bit for bit and within 1e-6 of the spec's listed values; the CFM loop = a hand-written 10-step Euler
(float64 and float32 schedules); CFG rows = separate estimator calls; dump shapes as listed; every flow path of the
dump = an independent float64 numpy re-implementation of the spec text (`spec_flow_float64`: direct i−j rel-pos,
formula positional rows and time embedding) within rel-L2 1e-5 (measured worst 2.6e-6, at a late estimator step);
and nine planted porting bugs (rel_shift j−i, sin-first time embedding, DiT conv/MLP order, adaLN shift/scale swap,
Mish→SiLU, exact GELU, CFG 0.5, pos_bias_u/v swapped, no LeakyReLU) each move the generated mel by rel-L2 ≥ 3e-5
(all but exact GELU ≥ 3.8e-3), so the 1e-5 parity tier catches them. Informative: forming the time-embedding argument
in float64 moves this tiny model's mel by only 3.4e-7 (the real model by up to 1e-5, docs/model.md §7.8), so this dump does
not by itself prove the float32 time schedule; match TAU_HEX and the float32 order of steplab_ref/flow.py anyway.

Choices where the spec is silent are listed at the top of steplab_ref/flow.py (rel-pos table construction, τ bit
patterns TAU_HEX, time-embedding operation order, CFG factors, DiT attention scaling, LayerNorm eps values).
"""
import collections
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from steplab_ref import safetensors_io  # noqa: E402
from steplab_ref.dumper import ModuleDumper  # noqa: E402
from steplab_ref import flow as flowmod  # noqa: E402
from steplab_ref.flow import (TAU_HEX, RelPositionMultiHeadedAttention, TimestepEmbedder, cosine_t_span,  # noqa: E402
                              load_flow_yaml)
from steplab_ref.hift import HiFTGenerator  # noqa: E402
from steplab_ref.patch import Patch  # noqa: E402

SEED = 20251126
P, N = 12, 20
OFFICIAL_YAML = "/work/shared/models/step-audio-2-mini/token2wav/flow.yaml"
CKPT_DIR = os.path.join(HERE, "tiny", "token2wav")
DUMP_DIR = os.path.join(HERE, "tiny", "dumps")

TINY_YAML = """flow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec
    input_size: 64
    output_size: 80
    spk_embed_dim: 192
    output_type: 'mel'
    vocab_size: 6561
    encoder: !new:cosyvoice2.transformer.upsample_encoder_v2.UpsampleConformerEncoderV2
        input_size: 64
        output_size: 64
        input_layer: 'linear'
        pre_lookahead_len: 3
        num_blocks: 2
        num_up_blocks: 2
        up_stride: 2
        up_scale_factor: 2
        attention_heads: 4
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        key_bias: true
        linear_units: 128
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
    decoder: !new:cosyvoice2.flow.flow_matching.CausalConditionalCFM
        inference_cfg_rate: 0.7
        estimator: !new:cosyvoice2.flow.decoder_dit.DiT
            in_channels: 320
            out_channels: 80
            mlp_ratio: 4.0
            depth: 2
            num_heads: 4
            head_dim: 16
            hidden_size: 64
"""
D, H, DK, FF, NB, NUB = 64, 4, 16, 128, 2, 2  # encoder width, heads, d_k, linear_units, blocks, up blocks
DH, DEPTH, DHEADS, DHD, DMLP = 64, 2, 4, 16, 256  # DiT hidden, depth, heads, head_dim, MLP width


def expected_keys():
    """§7.13 table, row by row, at the tiny widths."""
    k = collections.OrderedDict()
    k["input_embedding.weight"] = [6561, D]
    k["spk_embed_affine_layer.weight"], k["spk_embed_affine_layer.bias"] = [80, 192], [80]
    for e in ("embed", "up_embed"):
        k[f"encoder.{e}.out.0.weight"], k[f"encoder.{e}.out.0.bias"] = [D, D], [D]
        k[f"encoder.{e}.out.1.weight"], k[f"encoder.{e}.out.1.bias"] = [D], [D]
    k["encoder.pre_lookahead_layer.conv1.weight"], k["encoder.pre_lookahead_layer.conv1.bias"] = [D, D, 4], [D]
    k["encoder.pre_lookahead_layer.conv2.weight"], k["encoder.pre_lookahead_layer.conv2.bias"] = [D, D, 3], [D]
    for stack, n in (("encoders", NB), ("up_encoders", NUB)):
        for i in range(n):
            p = f"encoder.{stack}.{i}."
            for lin in ("q", "k", "v", "out"):
                k[p + f"self_attn.linear_{lin}.weight"], k[p + f"self_attn.linear_{lin}.bias"] = [D, D], [D]
            k[p + "self_attn.linear_pos.weight"] = [D, D]
            k[p + "self_attn.pos_bias_u"], k[p + "self_attn.pos_bias_v"] = [H, DK], [H, DK]
            k[p + "feed_forward.w_1.weight"], k[p + "feed_forward.w_1.bias"] = [FF, D], [FF]
            k[p + "feed_forward.w_2.weight"], k[p + "feed_forward.w_2.bias"] = [D, FF], [D]
            for nm in ("norm_mha", "norm_ff"):
                k[p + nm + ".weight"], k[p + nm + ".bias"] = [D], [D]
    k["encoder.up_layer.conv.weight"], k["encoder.up_layer.conv.bias"] = [D, D, 5], [D]
    k["encoder.after_norm.weight"], k["encoder.after_norm.bias"] = [D], [D]
    k["encoder_proj.weight"], k["encoder_proj.bias"] = [80, D], [80]
    e = "decoder.estimator."
    k[e + "t_embedder.mlp.0.weight"], k[e + "t_embedder.mlp.0.bias"] = [DH, 256], [DH]
    k[e + "t_embedder.mlp.2.weight"], k[e + "t_embedder.mlp.2.bias"] = [DH, DH], [DH]
    k[e + "in_proj.weight"], k[e + "in_proj.bias"] = [DH, 320], [DH]
    for b in range(DEPTH):
        p = f"{e}blocks.{b}."
        for lin in ("to_q", "to_k", "to_v", "proj"):
            k[p + f"attn.{lin}.weight"], k[p + f"attn.{lin}.bias"] = [DH, DH], [DH]
        for nm in ("q_norm", "k_norm"):
            k[p + f"attn.{nm}.weight"], k[p + f"attn.{nm}.bias"] = [DHD], [DHD]
        k[p + "mlp.fc1.weight"], k[p + "mlp.fc1.bias"] = [DMLP, DH], [DMLP]
        k[p + "mlp.fc2.weight"], k[p + "mlp.fc2.bias"] = [DH, DMLP], [DH]
        k[p + "conv.block.1.weight"], k[p + "conv.block.1.bias"] = [DH, DH, 3], [DH]
        k[p + "conv.block.3.weight"], k[p + "conv.block.3.bias"] = [DH], [DH]
        k[p + "conv.block.6.weight"], k[p + "conv.block.6.bias"] = [DH, DH, 3], [DH]
        k[p + "adaLN_modulation.1.weight"], k[p + "adaLN_modulation.1.bias"] = [9 * DH, DH], [9 * DH]
    k[e + "final_layer.adaLN_modulation.1.weight"], k[e + "final_layer.adaLN_modulation.1.bias"] = [2 * DH, DH], [2 * DH]
    k[e + "final_layer.linear.weight"], k[e + "final_layer.linear.bias"] = [80, DH], [80]
    return k


def check_yaml_matches_official():
    """The tiny yaml has the official file's tags and key tree (values differ)."""
    import yaml

    class L(yaml.SafeLoader):
        pass

    L.add_multi_constructor("!new:", lambda loader, suffix, node: {"__tag__": suffix, **loader.construct_mapping(node, deep=True)})

    def tree(v):
        return {k: tree(x) if isinstance(x, dict) else (x if k == "__tag__" else type(x).__name__)
                for k, x in v.items()}

    with open(OFFICIAL_YAML, encoding="utf-8") as f:
        official = yaml.load(f.read(), Loader=L)
    tiny = yaml.load(TINY_YAML, Loader=L)
    assert tree(official) == tree(tiny), "tiny flow.yaml must mirror the official tags and keys"
    assert [ln.split(":")[0] for ln in open(OFFICIAL_YAML, encoding="utf-8").read().splitlines()] == \
        [ln.split(":")[0] for ln in TINY_YAML.splitlines()], "same key order and indentation"


def perturb(model):
    """Moves every parameter away from init (see docstring). Deterministic given the global seed."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(s in name for s in ("norm", "embed.out.1.", "conv.block.3."))
            if name == "input_embedding.weight":
                p.copy_(torch.randn_like(p))
            elif leaf in ("pos_bias_u", "pos_bias_v"):
                p.copy_(0.5 * torch.randn_like(p))
            elif is_norm and leaf == "weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif leaf == "bias":
                scale = 0.3 if "adaLN_modulation" in name else 0.1
                p.copy_(scale * torch.randn_like(p))
            else:
                fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1)
                gain = 1.0
                if "self_attn.linear_q" in name or "self_attn.linear_k" in name:
                    gain = 0.35  # embed scales by sqrt(64) = 8: keep rel-pos scores O(1) so the softmax stays soft
                elif "adaLN_modulation" in name:
                    gain = 0.5
                p.copy_(gain * torch.randn_like(p) / math.sqrt(fan_in))


def check_relpos(attn: RelPositionMultiHeadedAttention, pos_enc, T=13):
    """Module (with rel_shift) vs a direct i−j formulation in float64 with PE computed independently."""
    g = torch.Generator().manual_seed(SEED + 10)
    x = torch.randn(1, T, D, generator=g) * 3.0
    _, pos_emb = pos_enc(torch.zeros(1, T, D))
    mask = torch.ones(1, 1, T, dtype=torch.bool)
    with torch.no_grad():
        got, _ = attn(x, x, x, mask, pos_emb)
    # Independent positional rows: r = T−1 … −(T−1), PE(r)[2m] = sin(r ω_m), [2m+1] = cos(r ω_m), ω_m = 10000^(−2m/d)
    r = np.arange(T - 1, -T, -1, dtype=np.float64)[:, None]
    w = 10000.0 ** (-np.arange(0, D, 2, dtype=np.float64) / D)
    pe = np.zeros((2 * T - 1, D))
    pe[:, 0::2], pe[:, 1::2] = np.sin(r * w), np.cos(r * w)
    assert np.abs(pos_emb[0].double().numpy() - pe).max() < 2e-5, "positional rows"
    sd = {k: v.double().numpy() for k, v in attn.state_dict().items()}
    xd = x[0].double().numpy()
    q = xd @ sd["linear_q.weight"].T + sd["linear_q.bias"]
    k = xd @ sd["linear_k.weight"].T + sd["linear_k.bias"]
    v = xd @ sd["linear_v.weight"].T + sd["linear_v.bias"]
    pp = pe @ sd["linear_pos.weight"].T  # row index n ↔ r = T−1−n

    def direct(sign):
        out = np.zeros((T, D))
        for h in range(H):
            s = slice(h * DK, (h + 1) * DK)
            u, vv = sd["pos_bias_u"][h], sd["pos_bias_v"][h]
            sc = np.zeros((T, T))
            for i in range(T):
                for j in range(T):
                    rr = sign * (i - j)
                    sc[i, j] = ((q[i, s] + u) @ k[j, s] + (q[i, s] + vv) @ pp[T - 1 - rr, s]) / math.sqrt(DK)
            a = np.exp(sc - sc.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            out[:, s] = a @ v[:, s]
        return out @ sd["linear_out.weight"].T + sd["linear_out.bias"]

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    ref = direct(+1)
    err, wrong = rel(got[0].double().numpy(), ref), rel(direct(-1), ref)
    assert err < 1e-5, f"rel-pos attention vs direct i−j: rel-L2 {err}"
    assert wrong > 1e-2, f"the check must tell i−j from j−i (got {wrong})"
    print(f"check rel-pos: module vs direct i−j rel-L2 {err:.2e} (j−i variant differs by {wrong:.2e})")


def check_encoder_parts(enc):
    g = torch.Generator().manual_seed(SEED + 11)
    x = torch.randn(1, 16, D, generator=g)
    with torch.no_grad():
        y = enc.pre_lookahead_layer(x)
        x2 = x.clone()
        x2[0, 10] += 1.0
        dy = (enc.pre_lookahead_layer(x2) - y).abs().sum(-1)[0]
        changed = [t for t in range(16) if dy[t] > 0]
        assert changed == list(range(7, 13)), f"pre-lookahead: output t sees t−2..t+3 (changed {changed})"
        xc = x.transpose(1, 2)
        up, _ = enc.up_layer(xc, torch.tensor([16]))
        ref = torch.nn.functional.conv1d(torch.nn.functional.pad(xc.repeat_interleave(2, dim=2), (4, 0)),
                                         enc.up_layer.conv.weight, enc.up_layer.conv.bias)
        assert torch.equal(up, ref) and up.shape == (1, D, 32), "up_layer = conv(left-pad 4, nearest ×2)"
    print("check encoder parts: pre-lookahead receptive field t−2..t+3, up_layer nearest ×2 + causal conv")


def check_time():
    tau = cosine_t_span(10)
    assert [float(x).hex() for x in tau.tolist()] == [float.fromhex(h).hex() for h in TAU_HEX], "τ bit patterns"
    listed = [0, 0.012312, 0.048943, 0.108993, 0.190983, 0.292893, 0.412215, 0.546010, 0.690983, 0.843566, 1.0]
    assert max(abs(a - b) for a, b in zip(tau.tolist(), listed)) < 1e-6, "τ vs docs/model.md §7.8 list"
    emb0 = TimestepEmbedder.timestep_embedding(torch.zeros(1), 256)
    assert torch.equal(emb0[0, :128], torch.ones(128)) and torch.equal(emb0[0, 128:], torch.zeros(128)), "cos first"
    t = torch.tensor([0.3], dtype=torch.float32)
    emb = TimestepEmbedder.timestep_embedding(t * 1000, 256)[0].double().numpy()
    f = np.exp(-math.log(10000.0) * np.arange(128) / 128.0)
    ref = np.concatenate([np.cos(300.0 * f), np.sin(300.0 * f)])
    assert np.abs(emb - ref).max() < 1e-4, "time embedding [cos, sin]"
    print("check time: τ bit patterns, cos-first time embedding")


def check_cfm(flow, mu, spks, cond, noise, got):
    """Hand-written 10-step Euler with CFG 0.7 (float64 loop on the spec's listed τ, and float32 on TAU_HEX)."""
    est = flow.decoder.estimator
    T = mu.shape[2]
    mask = torch.ones(2, 1, T)
    mu2 = torch.cat([mu, torch.zeros_like(mu)])
    s2 = torch.cat([spks, torch.zeros_like(spks)])
    c2 = torch.cat([cond, torch.zeros_like(cond)])

    def euler(taus, dtype):
        x = noise.to(dtype)
        with torch.no_grad():
            for k in range(10):
                t = torch.tensor([taus[k]] * 2, dtype=torch.float32)
                v = est(x.float().expand(2, -1, -1).contiguous(), mask, mu2, t, s2, c2).to(dtype)
                x = x + (taus[k + 1] - taus[k]) * (1.7 * v[:1] - 0.7 * v[1:])
        return x.float()

    listed = [0, 0.012312, 0.048943, 0.108993, 0.190983, 0.292893, 0.412215, 0.546010, 0.690983, 0.843566, 1.0]
    exact = [1 - math.cos(k * math.pi / 20) for k in range(11)]
    f32 = [float.fromhex(h) for h in TAU_HEX]

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    e64, e_list, e32 = rel(euler(exact, torch.float64), got), rel(euler(listed, torch.float64), got), \
        rel(euler(f32, torch.float32), got)
    assert e64 < 1e-4 and e_list < 1e-4 and e32 < 1e-5, (e64, e_list, e32)
    with torch.no_grad():  # CFG rows are independent: row 1 equals a separate unconditional call
        t = torch.tensor([0.3, 0.3])
        both = est(noise.expand(2, -1, -1).contiguous(), mask, mu2, t, s2, c2)
        uncond = est(noise, mask[:1], torch.zeros_like(mu), t[:1], torch.zeros_like(spks), torch.zeros_like(cond))
        assert rel(both[1:], uncond) < 1e-6
    print(f"check CFM: hand Euler rel-L2 {e64:.1e} (float64 exact τ), {e_list:.1e} (listed τ), {e32:.1e} (float32 τ)")


def spec_flow_float64(sd, inputs):
    """The spec's text (§7.6–7.9) written out again in float64 numpy, independent of steplab_ref/flow.py: no torch
    modules, no rel_shift (direct i−j indexing), positional rows and the time embedding from their formulas, the
    Euler loop on the float32 τ values. Returns {dump path: array} for every flow path of the dump."""
    w = {k: v.double().numpy() for k, v in sd.items()}
    codes, prompt_tokens, xvector, prompt_mel, noise, _ = (x.numpy().astype(np.float64) if x.is_floating_point()
                                                           else x.numpy() for x in inputs)
    out = {}

    def lin(x, name, bias=True):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if bias else y

    def ln(x, eps, name=None):
        y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
        return y * w[name + ".weight"] + w[name + ".bias"] if name else y

    def conv(x, name, left, right):  # x [T, C] → [T', C_out], zero padding
        k = w[name + ".weight"]  # [out, in, K]
        xp = np.concatenate([np.zeros((left, x.shape[1])), x, np.zeros((right, x.shape[1]))])
        K = k.shape[2]
        return sum(xp[j:j + xp.shape[0] - K + 1] @ k[:, :, j].T for j in range(K)) + w[name + ".bias"]

    def softmax(a):
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    silu = lambda x: x / (1 + np.exp(-x))  # noqa: E731

    def relpos_layer(x, p):
        T = x.shape[0]
        r = np.arange(T)[:, None] - np.arange(T)[None, :]  # i − j
        om = 10000.0 ** (-np.arange(0, D, 2) / D)
        rr = np.arange(T - 1, -T, -1)[:, None]
        pe = np.zeros((2 * T - 1, D))
        pe[:, 0::2], pe[:, 1::2] = np.sin(rr * om), np.cos(rr * om)
        y = ln(x, 1e-12, p + "norm_mha")
        q, k, v = lin(y, p + "self_attn.linear_q"), lin(y, p + "self_attn.linear_k"), lin(y, p + "self_attn.linear_v")
        P_ = lin(pe, p + "self_attn.linear_pos", bias=False)[T - 1 - r]  # [T, T, D]: row of r = i − j
        o = np.zeros_like(q)
        for h in range(H):
            s = slice(h * DK, (h + 1) * DK)
            qu, qv = q[:, s] + w[p + "self_attn.pos_bias_u"][h], q[:, s] + w[p + "self_attn.pos_bias_v"][h]
            sc = (qu @ k[:, s].T + np.einsum("id,ijd->ij", qv, P_[:, :, s])) / math.sqrt(DK)
            o[:, s] = softmax(sc) @ v[:, s]
        x = x + lin(o, p + "self_attn.linear_out")
        return x + lin(silu(lin(ln(x, 1e-12, p + "norm_ff"), p + "feed_forward.w_1")), p + "feed_forward.w_2")

    e = xvector[0] / max(np.linalg.norm(xvector[0]), 1e-12)
    s_spk = lin(e, "spk_embed_affine_layer")
    out["flow.spk_embed_affine_layer"] = s_spk[None]
    u = np.concatenate([prompt_tokens, codes])
    x = w["input_embedding.weight"][np.maximum(u, 0)]
    out["flow.input_embedding"] = x[None]
    x = ln(lin(x, "encoder.embed.out.0"), 1e-5, "encoder.embed.out.1") * math.sqrt(D)
    out["flow.encoder.embed"] = x[None]
    y = conv(x, "encoder.pre_lookahead_layer.conv1", 0, 3)
    y = np.where(y > 0, y, 0.01 * y)
    x = x + conv(y, "encoder.pre_lookahead_layer.conv2", 2, 0)
    out["flow.encoder.pre_lookahead_layer"] = x[None]
    for i in range(NB):
        x = relpos_layer(x, f"encoder.encoders.{i}.")
        out[f"flow.encoder.encoders.{i}"] = x[None]
    x = conv(np.repeat(x, 2, axis=0), "encoder.up_layer.conv", 4, 0)
    out["flow.encoder.up_layer"] = x.T[None]
    x = ln(lin(x, "encoder.up_embed.out.0"), 1e-5, "encoder.up_embed.out.1") * math.sqrt(D)
    out["flow.encoder.up_embed"] = x[None]
    for i in range(NUB):
        x = relpos_layer(x, f"encoder.up_encoders.{i}.")
        out[f"flow.encoder.up_encoders.{i}"] = x[None]
    x = ln(x, 1e-5, "encoder.after_norm")
    out["flow.encoder"] = x[None]
    mu = lin(x, "encoder_proj")  # [T, 80]
    out["flow.encoder_proj"] = mu[None]
    T2 = mu.shape[0]
    cond = np.zeros((T2, 80))
    cond[:2 * P] = prompt_mel[0]

    est = "decoder.estimator."
    mish = lambda x: x * np.tanh(np.log1p(np.exp(x)))  # noqa: E731
    gelu_tanh = lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))  # noqa: E731

    def dit(xm, mum, sv, cm, t):  # time-major [T, 80] inputs → [T, 80]
        f = np.exp(-math.log(10000.0) * np.arange(128) / 128)
        te = np.concatenate([np.cos(1000 * t * f), np.sin(1000 * t * f)])
        c = lin(silu(lin(te, est + "t_embedder.mlp.0")), est + "t_embedder.mlp.2")
        h = lin(np.concatenate([xm, mum, np.broadcast_to(sv, (T2, 80)), cm], axis=1), est + "in_proj")
        for b in range(DEPTH):
            p = f"{est}blocks.{b}."
            m = np.split(lin(silu(c), p + "adaLN_modulation.1"), 9)
            y = ln(h, 1e-6) * (1 + m[1]) + m[0]
            q, k, v = (lin(y, p + f"attn.to_{n}") for n in "qkv")
            o = np.zeros_like(q)
            for hh in range(DHEADS):
                s = slice(hh * DHD, (hh + 1) * DHD)
                qh, kh = ln(q[:, s], 1e-5, p + "attn.q_norm"), ln(k[:, s], 1e-5, p + "attn.k_norm")
                o[:, s] = softmax(qh @ kh.T / math.sqrt(DHD)) @ v[:, s]
            h = h + m[2] * lin(o, p + "attn.proj")
            y = ln(h, 1e-6) * (1 + m[7]) + m[6]
            y = conv(mish(ln(conv(y, p + "conv.block.1", 2, 0), 1e-5, p + "conv.block.3")), p + "conv.block.6", 2, 0)
            h = h + m[8] * y
            y = ln(h, 1e-6) * (1 + m[4]) + m[3]
            h = h + m[5] * lin(gelu_tanh(lin(y, p + "mlp.fc1")), p + "mlp.fc2")
        sh, sc = np.split(lin(silu(c), est + "final_layer.adaLN_modulation.1"), 2)
        return lin(ln(h, 1e-6) * (1 + sc) + sh, est + "final_layer.linear")

    tau = [float.fromhex(hx) for hx in TAU_HEX]
    xk = noise[0].T
    zeros = np.zeros((T2, 80))
    for k in range(10):
        v0, v1 = dit(xk, mu, s_spk, cond, tau[k]), dit(xk, zeros, np.zeros(80), zeros, tau[k])
        out[f"flow.decoder.estimator.step.{k}"] = np.stack([v0.T, v1.T])
        xk = xk + (tau[k + 1] - tau[k]) * (1.7 * v0 - 0.7 * v1)
    out["flow.decoder"] = xk.T[None]
    out["flow"] = xk.T[None, :, 2 * P:]
    return out


def check_against_spec(sd, inputs, tensors):
    ref = spec_flow_float64(sd, inputs)
    worst, where = 0.0, ""
    for k, v in ref.items():
        got = tensors[k].double().numpy()
        assert got.shape == v.shape, (k, got.shape, v.shape)
        err = float(np.linalg.norm(got - v) / np.linalg.norm(v))
        assert err < 1e-5, f"{k}: reference module vs float64 spec re-implementation rel-L2 {err:.2e}"
        if err > worst:
            worst, where = err, k
    print(f"check spec: {len(ref)} flow paths equal an independent float64 numpy version of §7.6–7.9 "
          f"(worst rel-L2 {worst:.1e} at {where})")


def planted_bugs(flow):
    """Typical porting bugs of the flow, each as (name, context manager that plants it, first recorded dump path where
    it shows)."""
    shift = RelPositionMultiHeadedAttention.__dict__["rel_shift"].__func__
    emb = TimestepEmbedder.__dict__["timestep_embedding"].__func__
    blk = flowmod.DiTBlock

    def sin_first(t, dim, max_period=10000):
        e = emb(t, dim, max_period)
        return torch.cat([e[:, dim // 2:], e[:, :dim // 2]], dim=-1)

    def mlp_before_conv(self, x, c, attn_mask):
        m = self.adaLN_modulation(c).chunk(9, dim=-1)
        x = x + m[2] * self.attn(flowmod.modulate(self.norm1(x), m[0], m[1]), attn_mask)
        x = x + m[5] * self.mlp(flowmod.modulate(self.norm2(x), m[3], m[4]))
        return x + m[8] * self.conv(flowmod.modulate(self.norm3(x), m[6], m[7]))

    def shift_scale_swapped(self, x, c, attn_mask):
        m = self.adaLN_modulation(c).chunk(9, dim=-1)
        x = x + m[2] * self.attn(flowmod.modulate(self.norm1(x), m[1], m[0]), attn_mask)
        x = x + m[8] * self.conv(flowmod.modulate(self.norm3(x), m[7], m[6]))
        return x + m[5] * self.mlp(flowmod.modulate(self.norm2(x), m[4], m[3]))

    est = flow.decoder.estimator
    step0, enc0 = "flow.decoder.estimator.step.0", "flow.encoder.encoders.0"
    return [
        ("rel_shift j−i", lambda: Patch(RelPositionMultiHeadedAttention, "rel_shift",
                                         staticmethod(lambda x: shift(x.flip(-1)))), enc0),
        ("time embedding sin first", lambda: Patch(TimestepEmbedder, "timestep_embedding", staticmethod(sin_first)), step0),
        ("DiT mlp before conv", lambda: Patch(blk, "forward", mlp_before_conv), step0),
        ("adaLN shift/scale swapped", lambda: Patch(blk, "forward", shift_scale_swapped), step0),
        ("Mish → SiLU", lambda: Patch(est.blocks[0].conv.block, "5", torch.nn.SiLU()), step0),
        ("GELU tanh → exact", lambda: Patch(torch.nn.GELU, "forward", lambda self, x: torch.nn.functional.gelu(x)), step0),
        ("CFG rate 0.5", lambda: Patch(flow.decoder, "inference_cfg_rate", 0.5), "flow.decoder.estimator.step.1"),
        ("pos_bias_u/v swapped", lambda: Patch(flow.encoder.encoders[0].self_attn, "pos_bias_u",
                                               flow.encoder.encoders[0].self_attn.pos_bias_v), enc0),
        ("no LeakyReLU in pre-lookahead", lambda: Patch(flowmod.F, "leaky_relu", lambda x, *a, **k: x), "flow.encoder.pre_lookahead_layer"),
    ]


def check_sensitivity(flow, inputs, ref):
    """Plants typical porting bugs one at a time and asserts each moves the generated mel by far more than the 1e-5
    rel-L2 parity tolerance, so the dump can catch them (the tiny weights do not hide them). GELU tanh vs exact is
    the subtlest (the two differ by < 5e-4 anywhere), so its bar is 3e-5 (3× the tolerance) instead of 1e-3."""
    codes, prompt_tokens, xvector, prompt_mel, noise, _ = inputs
    emb = TimestepEmbedder.__dict__["timestep_embedding"].__func__

    def f64_time(t, dim, max_period=10000):
        half = dim // 2
        f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
        a = t[:, None].double() * f[None]
        return torch.cat([torch.cos(a), torch.sin(a)], dim=-1).float()

    bugs = [(name, make) for name, make, _ in planted_bugs(flow)]
    with torch.no_grad():
        def run():
            mel, _ = flow.inference(codes[None], torch.tensor([N]), prompt_tokens[None], torch.tensor([P]),
                                    prompt_mel, torch.tensor([2 * P]), xvector, noise=noise)
            return float((mel - ref).norm() / ref.norm())
        assert run() == 0.0, "the flow is deterministic"
        for name, make in bugs:
            with make():
                err = run()
            assert err > (3e-5 if "GELU" in name else 1e-3), f"planted bug '{name}' moves the mel only by rel-L2 {err:.1e}"
            print(f"  sensitivity: {name:32s} rel-L2 {err:.1e}")
        assert run() == 0.0, "patches restored"
        with Patch(TimestepEmbedder, "timestep_embedding", staticmethod(f64_time)):
            err = run()
        print(f"  informative: time embedding argument in float64 instead of float32: rel-L2 {err:.1e}")


def build_flow():
    torch.manual_seed(SEED)
    flow = load_flow_yaml(TINY_YAML).eval()
    perturb(flow)
    return flow


def load_hift():
    sd = torch.load(os.path.join(CKPT_DIR, "hift.pt"))
    sd = {k[len("generator."):]: v for k, v in sd.items()}
    m = HiFTGenerator(base_channels=sd["conv_pre.weight_v"].shape[0],
                      cond_channels=sd["f0_predictor.condnet.0.weight_v"].shape[0]).eval()
    m.load_state_dict(sd, strict=True)
    return m


def make_inputs():
    g = torch.Generator().manual_seed(SEED + 1)
    codes = torch.randint(0, 6561, (N,), generator=g)
    codes[3], codes[11] = 0, 6560
    prompt_tokens = torch.randint(0, 6561, (P,), generator=g)
    xvector = (torch.randn(1, 192, generator=g) * 0.8 + 0.1).contiguous()
    mel = safetensors_io.load_file(os.path.join(HERE, "fixtures", "prompt_features", "mel24k.safetensors"))["female.mel"]
    prompt_mel = mel[:, 40:40 + 2 * P].contiguous()
    noise = torch.randn(1, 80, 2 * (P + N), generator=g)
    hift_noise = torch.randn(1, 480 * 2 * N, 9, generator=g)
    return codes, prompt_tokens, xvector, prompt_mel, noise, hift_noise


class Token2Wav(torch.nn.Module):
    """Holder so that hooks see `flow.*` and `hift.*` paths."""

    def __init__(self, flow, hift):
        super().__init__()
        self.flow, self.hift = flow, hift


def run_dump(flow, hift, inputs):
    codes, prompt_tokens, xvector, prompt_mel, noise, hift_noise = inputs
    paths = ["flow.input_embedding", "flow.spk_embed_affine_layer", "flow.encoder.embed",
             "flow.encoder.pre_lookahead_layer"]
    paths += [f"flow.encoder.encoders.{i}" for i in range(NB)]
    paths += ["flow.encoder.up_layer", "flow.encoder.up_embed"] + [f"flow.encoder.up_encoders.{i}" for i in range(NUB)]
    paths += ["flow.encoder", "flow.encoder_proj", "flow.decoder"]
    paths += ["hift.f0_predictor", "hift.m_source", "hift.conv_pre", "hift.conv_post"]
    paths += [f"hift.{m}.{i}" for m in ("ups", "source_downs", "source_resblocks") for i in range(3)]
    paths += [f"hift.resblocks.{i}" for i in range(9)]
    paths += ["input.*", "flow", "flow.decoder.estimator.step.*", "hift.source_stft", "hift"]  # recorded by hand
    root = Token2Wav(flow, hift)
    step = [0]
    with ModuleDumper(root, paths) as d, torch.no_grad():
        for name, t in (("input.codes", codes), ("input.prompt_tokens", prompt_tokens), ("input.xvector", xvector),
                        ("input.prompt_mel", prompt_mel), ("input.noise", noise), ("input.hift_noise", hift_noise)):
            d.record(name, t)

        def est_hook(mod, inp, out):
            d.record(f"flow.decoder.estimator.step.{step[0]}", out)
            step[0] += 1

        h = flow.decoder.estimator.register_forward_hook(est_hook)
        mel, _ = flow.inference(codes[None], torch.tensor([N]), prompt_tokens[None], torch.tensor([P]), prompt_mel,
                                torch.tensor([2 * P]), xvector, noise=noise)
        h.remove()
        d.record("flow", mel)
        torch.manual_seed(SEED + 2)  # SineGen2's (ineffective) random initial phase
        f0, s = hift.source(mel, hift_noise)
        d.record("hift.source_stft", hift.source_stft(s))
        wav = hift.decode(mel, s)
        d.record("hift", wav)
    assert step[0] == 10
    return d, mel, wav, f0


def write_bug_dumps(out_dir):
    """`--bugs-out DIR`: the committed tiny flow + HiFT and the inputs of the committed dump, run once per planted bug;
    writes token2wav-bug-K.safetensors and manifest.json (bug → the first recorded path where it must fail)."""
    torch.set_num_threads(1)
    flow = load_flow_yaml(os.path.join(CKPT_DIR, "flow.yaml")).eval()
    flow.load_state_dict(torch.load(os.path.join(CKPT_DIR, "flow.pt")), strict=True)
    hift = load_hift()
    d = safetensors_io.load_file(os.path.join(DUMP_DIR, "token2wav-short.safetensors"))
    inputs = tuple(d[k] for k in ("input.codes", "input.prompt_tokens", "input.xvector", "input.prompt_mel", "input.noise",
                                  "input.hift_noise"))
    os.makedirs(out_dir, exist_ok=True)
    manifest = {}
    for k, (name, make, first) in enumerate(planted_bugs(flow)):
        with make():
            dumper, _, _, _ = run_dump(flow, hift, inputs)
        file = f"token2wav-bug-{k}.safetensors"
        dumper.save(os.path.join(out_dir, file), note=f"planted: {name}")
        manifest[file] = {"bug": name, "reference": "token2wav-short.safetensors", "first_failure": first}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(manifest)} planted flow bugs to {out_dir}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--bugs-out":
        return write_bug_dumps(sys.argv[2])
    torch.set_num_threads(1)
    os.makedirs(CKPT_DIR, exist_ok=True)
    os.makedirs(DUMP_DIR, exist_ok=True)
    check_yaml_matches_official()
    with open(os.path.join(CKPT_DIR, "flow.yaml"), "w", encoding="utf-8") as f:
        f.write(TINY_YAML)

    flow = build_flow()
    sd = collections.OrderedDict((k, v.detach().clone().contiguous()) for k, v in flow.state_dict().items())
    exp = expected_keys()
    assert sorted(sd) == sorted(exp), f"keys: extra {sorted(set(sd) - set(exp))}, missing {sorted(set(exp) - set(sd))}"
    for k, shape in exp.items():
        assert list(sd[k].shape) == shape and sd[k].dtype == torch.float32, (k, list(sd[k].shape), shape)
    small = [k for k, v in sd.items() if v.abs().min() == 0 or v.std() < 1e-3 and v.numel() > 1]
    assert not small, f"parameters with zeros or (near-)constant values: {small}"
    torch.save(sd, os.path.join(CKPT_DIR, "flow.pt"))

    # The file on disk rebuilds the same model from the yaml file (strict load).
    reloaded = load_flow_yaml(os.path.join(CKPT_DIR, "flow.yaml")).eval()
    reloaded.load_state_dict(torch.load(os.path.join(CKPT_DIR, "flow.pt")), strict=True)
    flow = reloaded
    print(f"flow.pt: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} parameters")

    enc = flow.encoder
    check_relpos(enc.encoders[0].self_attn, enc.embed.pos_enc)
    check_encoder_parts(enc)
    check_time()

    hift = load_hift()
    inputs = make_inputs()
    d, mel, wav, f0 = run_dump(flow, hift, inputs)
    t = d.tensors

    # CFM self-check on the dump's own μ, s, cond and noise.
    mu = t["flow.encoder_proj"].transpose(1, 2)
    spks = t["flow.spk_embed_affine_layer"]
    cond = torch.zeros(1, 80, 2 * (P + N))
    cond[:, :, :2 * P] = inputs[3].transpose(1, 2)
    check_cfm(flow, mu, spks, cond, inputs[4], t["flow.decoder"])
    assert torch.equal(t["flow"], t["flow.decoder"][:, :, 2 * P:])
    for k in range(10):  # each recorded step is the estimator on [x_K; x_K] (row 1 unconditional)
        assert t[f"flow.decoder.estimator.step.{k}"].shape == (2, 80, 2 * (P + N))

    T2 = 2 * (P + N)
    shapes = {"input.codes": (N,), "input.prompt_tokens": (P,), "input.xvector": (1, 192),
              "input.prompt_mel": (1, 2 * P, 80), "input.noise": (1, 80, T2), "input.hift_noise": (1, 480 * 2 * N, 9),
              "flow.input_embedding": (1, P + N, D), "flow.spk_embed_affine_layer": (1, 80),
              "flow.encoder.embed": (1, P + N, D), "flow.encoder.pre_lookahead_layer": (1, P + N, D),
              "flow.encoder.up_layer": (1, D, T2), "flow.encoder.up_embed": (1, T2, D), "flow.encoder": (1, T2, D),
              "flow.encoder_proj": (1, T2, 80), "flow.decoder": (1, 80, T2), "flow": (1, 80, 2 * N),
              "hift.f0_predictor": (1, 2 * N), "hift": (1, 480 * 2 * N)}
    shapes.update({f"flow.encoder.encoders.{i}": (1, P + N, D) for i in range(NB)})
    shapes.update({f"flow.encoder.up_encoders.{i}": (1, T2, D) for i in range(NUB)})
    for k, s in shapes.items():
        assert tuple(t[k].shape) == s, (k, tuple(t[k].shape), s)
    assert t["input.codes"].dtype == torch.int64 and t["input.prompt_tokens"].dtype == torch.int64

    note = (f"make_flow.py: tiny flow (tiny/token2wav/flow.pt, flow.yaml) + tiny HiFT (hift.pt); P={P} prompt tokens, "
            f"N={N} codes, float32, fp32 time schedule (docs/model.md §7.8)")
    d.save(os.path.join(DUMP_DIR, "token2wav-short.safetensors"), note=note)

    check_against_spec(flow.state_dict(), inputs, t)
    print("check sensitivity (planted bugs vs the generated mel):")
    check_sensitivity(flow, inputs, t["flow"])
    for k in d.order:
        v = t[k]
        stats = f"mean {v.float().mean():+.3f} std {v.float().std():.3f}" if v.is_floating_point() else ""
        print(f"  {k:40s} {str(list(v.shape)):16s} {stats}")
    f0v = f0.flatten()
    print(f"mel range {mel.min():.2f}..{mel.max():.2f}; f0 {f0v.min():.1f}..{f0v.max():.1f} Hz "
          f"(unvoiced {(f0v <= 10).sum().item()}/{f0v.numel()}); wav absmax {wav.abs().max():.4f}")


if __name__ == "__main__":
    main()
