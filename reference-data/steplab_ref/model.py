"""Step-Audio 2 mini modules (docs/model.md §3–§5) with the official module tree and state-dict keys.

`encoder` (AudioEncoder), `adapter` (Adaptor), `model` (Qwen2 decoder), `lm_head`. Computation in float32; the official
model runs bf16, so tiny checkpoints hold bf16-exact values and the f32 math here is what a port should reproduce.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------------------------- audio encoder

class MultiHeadAttention(nn.Module):
    """Whisper attention: key without bias, split d^-0.25 scaling on q and k (docs/model.md §3.5). Returns (out, qk) like the
    official module: qk = the masked pre-softmax scores in float32 [B, heads, T, T] (dumpers record it as `<path>.qk`)."""

    def __init__(self, n_state, n_head):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x, mask_bias):
        q, k, v = self.query(x), self.key(x), self.value(x)
        b, t, d = q.shape
        scale = (d // self.n_head) ** -0.25
        q = q.view(b, t, self.n_head, -1).permute(0, 2, 1, 3) * scale
        k = k.view(b, t, self.n_head, -1).permute(0, 2, 3, 1) * scale
        v = v.view(b, t, self.n_head, -1).permute(0, 2, 1, 3)
        qk = q @ k
        if mask_bias is not None:
            qk = qk + mask_bias
        qk = qk.float()
        w = F.softmax(qk, dim=-1).to(q.dtype)
        o = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
        return self.out(o), qk.detach()


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state, n_head):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x, mask_bias):
        x = x + self.attn(self.attn_ln(x), mask_bias)[0]
        x = x + self.mlp(self.mlp_ln(x))
        return x


def make_pad_mask_bias(lengths: torch.Tensor, t_pad: int) -> torch.Tensor:
    """Additive key mask after conv2 (docs/model.md §3.3): valid over the padded mel length, subsampled from (T+1) mod 2."""
    valid = torch.arange(t_pad)[None, :] < lengths[:, None]
    valid = valid[:, (t_pad + 1) % 2::2]
    bias = torch.zeros(valid.shape, dtype=torch.float32).masked_fill(~valid, -1e10)
    return bias[:, None, None, :]


class AudioEncoder(nn.Module):
    def __init__(self, n_mels, n_ctx, n_state, n_head, n_layer):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.positional_embedding = nn.Embedding(n_ctx, n_state)
        self.blocks = nn.ModuleList([ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)])
        self.avg_pooler = nn.AvgPool1d(2, stride=2)
        self.after_norm = nn.LayerNorm(n_state)

    def forward(self, x, x_len):
        t = x.shape[-1]
        mask_bias = make_pad_mask_bias(x_len, t)
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        x = x.permute(0, 2, 1)
        x = x + self.positional_embedding.weight[: x.shape[1]]
        for block in self.blocks:
            x = block(x, mask_bias)
        x = self.avg_pooler(x.permute(0, 2, 1)).permute(0, 2, 1)
        x = self.after_norm(x)
        enc_len = ((x_len + 1) // 2) // 2
        return x, enc_len


class Adaptor(nn.Module):
    """Conv k3 s2 + GELU, linear1 → ReLU → linear2 (docs/model.md §4; ReLU confirmed)."""

    def __init__(self, n_state, llm_dim, kernel_size=3, stride=2, hidden=2048):
        super().__init__()
        self.conv = nn.Conv1d(n_state, n_state, kernel_size, stride, padding=1)
        self.linear1 = nn.Linear(n_state, hidden)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(hidden, llm_dim)
        self.stride = stride

    def forward(self, x):
        x = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return self.linear2(self.relu(self.linear1(x)))


# ----------------------------------------------------------------------------------------------- Qwen2 decoder

class Qwen2RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Qwen2RotaryEmbedding(nn.Module):
    """`model.rotary_emb`: (cos, sin) of cat(freqs, freqs), each [B, T, head_dim], freqs = position · θ^(−2i/hd) in
    float32 (HF Qwen2 convention; the module sits on the model and its output is shared by every layer)."""

    def __init__(self, head_dim, theta):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, x, position_ids):
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        freqs = position_ids[:, :, None].float() * inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


class Qwen2Attention(nn.Module):
    """Batch-first like the official module: x [B, T, D] → ([B, T, D], None)."""

    def __init__(self, c):
        super().__init__()
        self.n_head, self.n_kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.head_dim = c["hidden_size"] // self.n_head
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.n_head * self.head_dim)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, d, bias=False)

    def forward(self, x, position_embeddings):
        b, t, _ = x.shape
        cos, sin = position_embeddings[0][:, None], position_embeddings[1][:, None]  # [B, 1, T, hd]
        q = self.q_proj(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.n_head // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        causal = torch.full((t, t), float("-inf")).triu(1)
        w = F.softmax(scores.float() + causal, dim=-1).to(q.dtype)
        o = (w @ v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(o), None


class Qwen2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    """Returns a 1-tuple like the official layer (a hook records its first element, [B, T, D])."""

    def __init__(self, c):
        super().__init__()
        self.self_attn = Qwen2Attention(c)
        self.mlp = Qwen2MLP(c)
        self.input_layernorm = Qwen2RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = Qwen2RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, position_embeddings):
        x = x + self.self_attn(self.input_layernorm(x), position_embeddings)[0]
        return (x + self.mlp(self.post_attention_layernorm(x)),)


class Qwen2Model(nn.Module):
    """Takes inputs_embeds [B, T, D]; returns a dict (not a tensor or tuple: like the official ModelOutput, a forward
    hook on `model` records nothing)."""

    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Qwen2DecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = Qwen2RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.rotary_emb = Qwen2RotaryEmbedding(c["hidden_size"] // c["num_attention_heads"], c["rope_theta"])

    def forward(self, inputs_embeds):
        h = inputs_embeds
        positions = torch.arange(h.shape[1])[None].expand(h.shape[0], -1)
        pe = self.rotary_emb(h, positions)
        for layer in self.layers:
            h = layer(h, pe)[0]
        return {"last_hidden_state": self.norm(h)}


class StepAudio2(nn.Module):
    """Top level: keys `encoder.*`, `adapter.*`, `model.*`, `lm_head.weight` exactly as the published checkpoint."""

    AUDIO_START = 151688

    def __init__(self, config, adapter_hidden=2048):
        super().__init__()
        a, t = config["audio_encoder_config"], config["text_config"]
        self.encoder = AudioEncoder(a["n_mels"], a["n_audio_ctx"], a["n_audio_state"], a["n_audio_head"], a["n_audio_layer"])
        # 2048 is fixed in the official Adaptor; tiny checkpoints shrink it (ports infer it from adapter.linear1.weight)
        self.adapter = Adaptor(a["n_audio_state"], a["llm_dim"], a["kernel_size"], a["adapter_stride"], adapter_hidden)
        self.model = Qwen2Model(t)
        self.lm_head = nn.Linear(t["hidden_size"], t["vocab_size"], bias=False)

    def encode_audio(self, mels, mel_lens):
        """Encoder + adaptor on a batch of chunk mels; returns (features [B, T4, llm_dim], valid lengths)."""
        x, enc_len = self.encoder(mels, mel_lens)
        feats = self.adapter(x)
        feat_len = (enc_len - 1) // 2 + 1
        return feats, feat_len

    def forward(self, ids, mels=None, mel_lens=None):
        """ids [T] or [1, T]; returns logits [1, T, vocab] (batch-first, as the official forward)."""
        ids = ids.reshape(1, -1)
        h = self.model.embed_tokens(ids)
        if mels is not None:
            feats, feat_len = self.encode_audio(mels, mel_lens)
            starts = (ids[0] == self.AUDIO_START).nonzero().flatten().tolist()
            h = h.clone()
            for k, s in enumerate(starts):
                n = int(feat_len[k])
                h[0, s + 1: s + 1 + n] = feats[k, :n]
        return self.lm_head(self.model(h)["last_hidden_state"])


def from_checkpoint(model_dir, cls=None):
    """A checkpoint folder (config.json + sharded or single safetensors) loaded strictly into `cls` (default
    StepAudio2), in float32; the adaptor width is read from adapter.linear1.weight."""
    import json
    import os
    from . import safetensors_io
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    state = {}
    for s in shards:
        state.update(safetensors_io.load_file(os.path.join(model_dir, s)))
    m = (cls or StepAudio2)(config, state["adapter.linear1.weight"].shape[0]).eval()
    m.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return m
