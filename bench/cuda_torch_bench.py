"""PyTorch side of the CUDA benchmark (scripts/gpu.sh runs it in the same device call as steplab-gpu-tests).

The same Qwen2-7B-shaped decoder as tests/StepAudio2.Lab.GpuTests/DecodeBench.cs (28 layers, hidden 3584, GQA 28/4,
head_dim 128, SwiGLU 18944, vocab 158720, RoPE theta 1e6) with random bf16 weights, in plain eager PyTorch ops
(F.linear, F.scaled_dot_product_attention) and a preallocated KV cache, the way Hugging Face's eager Qwen2 computes:
prefill of a 500-token prompt, then greedy decoding with the argmax synchronising each step.
With a second argument (the real config.json), also the audio encoder + adaptor on 25 s of audio (one chunk of 2500
mel frames) with the project's PyTorch reference modules (reference-data/steplab_ref/model.py: Whisper-style
AudioEncoder, Adaptor) in bf16 on the device, best of 3 after a warm-up.
Writes JSON to the path given as the first argument.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "..", "reference-data"))

H, L, NH, NKV, HD, I, V, THETA, EPS = 3584, 28, 28, 4, 128, 18944, 158720, 1e6, 1e-6


@torch.no_grad()
def encoder_bench(config_path, dev="cuda", dt=torch.bfloat16):
    from steplab_ref.model import AudioEncoder, Adaptor
    a = json.load(open(config_path))["audio_encoder_config"]
    llm = json.load(open(config_path))["text_config"]["hidden_size"]
    torch.manual_seed(0)
    enc = AudioEncoder(a["n_mels"], a["n_audio_ctx"], a["n_audio_state"], a["n_audio_head"], a["n_audio_layer"]).to(dev, dt).eval()
    ada = Adaptor(a["n_audio_state"], llm, a.get("kernel_size", 3)).to(dev, dt).eval()
    frames = 2500
    mel = torch.randn(1, a["n_mels"], frames, device=dev, dtype=dt)

    def run():
        # AudioEncoder.forward without the padding mask: one full chunk has no padded frames (the mask is all zeros)
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).permute(0, 2, 1)
        x = x + enc.positional_embedding.weight[: x.shape[1]]
        for block in enc.blocks:
            x = block(x, None)
        x = enc.after_norm(enc.avg_pooler(x.permute(0, 2, 1)).permute(0, 2, 1))
        return ada(x)

    best = 1e9
    for r in range(4):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        y = run()
        torch.cuda.synchronize()
        if r > 0:
            best = min(best, (time.perf_counter() - t0) * 1000)
    return dict(encoder_adaptor_ms=best, audio_seconds=25.0, mel_frames=frames, features=list(y.shape), dtype=str(dt))


def main(out, prompt=500, steps=128, config=None):
    dev, dt = "cuda", torch.bfloat16
    torch.manual_seed(0)
    w = lambda *s: (torch.rand(*s, device=dev, dtype=dt) * 2 - 1) * 0.02
    embed, lm_head = w(V, H), w(V, H)
    layers = [dict(q=w(NH * HD, H), qb=w(NH * HD), k=w(NKV * HD, H), kb=w(NKV * HD), v=w(NKV * HD, H), vb=w(NKV * HD),
                   o=w(H, NH * HD), g=w(I, H), u=w(I, H), d=w(H, I), n1=torch.ones(H, device=dev, dtype=dt),
                   n2=torch.ones(H, device=dev, dtype=dt)) for _ in range(L)]
    final = torch.ones(H, device=dev, dtype=dt)
    maxT = prompt + steps + 8
    kc = [torch.zeros(1, NKV, maxT, HD, device=dev, dtype=dt) for _ in range(L)]
    vc = [torch.zeros(1, NKV, maxT, HD, device=dev, dtype=dt) for _ in range(L)]
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.int64, device=dev).float() / HD))

    def rms(x, wt):
        v = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(v + EPS)).to(dt) * wt

    def tables(pos, t):
        # once per forward, as HF's Qwen2RotaryEmbedding
        p = torch.arange(pos, pos + t, device=dev, dtype=torch.float32)
        f = torch.outer(p, inv)
        emb = torch.cat([f, f], -1)
        return emb.cos().to(dt), emb.sin().to(dt)

    def rope(x, cs):
        cos, sin = cs
        x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    @torch.no_grad()
    def forward(ids, pos):
        t = ids.shape[0]
        x = embed[ids][None]
        cs = tables(pos, t)
        for li, lw in enumerate(layers):
            h = rms(x, lw["n1"])
            q = rope(F.linear(h, lw["q"], lw["qb"]).view(1, t, NH, HD).transpose(1, 2), cs)
            k = rope(F.linear(h, lw["k"], lw["kb"]).view(1, t, NKV, HD).transpose(1, 2), cs)
            v = F.linear(h, lw["v"], lw["vb"]).view(1, t, NKV, HD).transpose(1, 2)
            kc[li][:, :, pos:pos + t] = k
            vc[li][:, :, pos:pos + t] = v
            kk = kc[li][:, :, :pos + t].repeat_interleave(NH // NKV, 1)
            vv = vc[li][:, :, :pos + t].repeat_interleave(NH // NKV, 1)
            a = F.scaled_dot_product_attention(q, kk, vv, is_causal=t > 1)
            x = x + F.linear(a.transpose(1, 2).reshape(1, t, NH * HD), lw["o"])
            h = rms(x, lw["n2"])
            x = x + F.linear(F.silu(F.linear(h, lw["g"])) * F.linear(h, lw["u"]), lw["d"])
        return F.linear(rms(x[:, -1], final), lm_head)

    ids = torch.randint(0, V, (prompt,), device=dev)
    forward(ids, 0).argmax(-1).item(); forward(ids[:1], prompt).argmax(-1).item()
    best = 1e9
    for _ in range(3):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        nxt = forward(ids, 0).argmax(-1).item()
        best = min(best, (time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    for i in range(steps):
        nxt = forward(torch.tensor([nxt], device=dev), prompt + i).argmax(-1).item()
    secs = time.perf_counter() - t0
    res = dict(name="torch-eager-bf16", device=torch.cuda.get_device_name(0), torch=torch.__version__, prompt_tokens=prompt,
               decode_tokens=steps, prefill_ms=best, decode_tok_per_s=steps / secs, ms_per_token=secs * 1000 / steps,
               max_memory_mib=torch.cuda.max_memory_allocated() >> 20)
    del layers, kc, vc, embed, lm_head
    torch.cuda.empty_cache()
    if config:
        res["encoder"] = encoder_bench(config)
    print(json.dumps(res))
    with open(out, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], config=sys.argv[2] if len(sys.argv) > 2 else None)
