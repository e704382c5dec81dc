"""Plain-PyTorch reference of Step-Audio 2's token2wav flow (`CausalMaskedDiffWithXvec`), written from the spec.

Mirrors docs/model.md §7.1 (files), §7.6 (flow inference), §7.7 (UpsampleConformerEncoderV2 with ESPnet
rel-pos attention), §7.8 (CausalConditionalCFM: 10 Euler steps, cosine schedule, CFG as a batch of two), §7.9 (DiT
estimator), §7.13 (state-dict keys) and §9 (the CFM noise is an input). Class names, module tree and parameter names
follow the upstream CosyVoice 2 / Step-Audio 2 classes, so `state_dict()` has exactly the keys of the real
`token2wav/flow.pt` and forward hooks see the official module paths. Constructor arguments are the keys of
`flow.yaml`; `load_flow_yaml` builds the model from that file (the `!new:` tags resolve to the classes here).
Runs with Debian 12's python3-torch 1.13 (CPU, float32, eval mode; dropout arguments are accepted and unused).

Choices made where the spec is silent or leaves the operation order open (a port that wants 1e-6 should match them):
* ESPnet rel-pos table (§7.7): built as upstream's `EspnetRelPositionalEncoding.extend_pe` does, in float32:
  ω = exp(float32(2m) · float32(−ln(10000)/d)) (the constant formed in double, rounded once), position p as float32,
  rows sin(p·ω) / cos(p·ω) (product in float32) for p = T−1..0 (flipped) then sin(−p·ω) / cos(−p·ω) for
  p = 1..T−1; the rows for length T are the centre 2T−1 rows of a max_len table (values independent of max_len). The embed scales by xscale = sqrt(d) (python float) after the LayerNorm.
* Rel-pos attention: scores = (matrix_ac + rel_shift(matrix_bd)) / sqrt(d_k), computed exactly as upstream (the
  Transformer-XL shift over the 2T−1 rows; net effect score[i, j] uses row r = i − j). Masked softmax with an all-ones
  padding mask (batch 1) is a plain softmax.
* Conformer LayerNorm eps: norm_mha / norm_ff 1e-12; embed/up_embed LayerNorm and after_norm 1e-5; SiLU in the FFN.
* Time schedule (§7.8), float32 throughout: τ = 1 − cos(linspace(0, 1, 11) · 0.5 · π) (the product taken left to right
  in float32, π rounded to float32); the float32 bit patterns torch 1.13 produces are TAU_HEX below. Here torch's
  float32 cos equals float32(cos in double), but a float32 cos library may be 1 ulp off (numpy's is, at k = 7), so
  take these constants (or cos in double, rounded) rather than a float32 cos.
  t = τ0, dt = τ1 − τ0; after each step x ← x + dt·v, t ← t + dt, dt ← τ_{k+1} − t (all float32 scalars).
* Time embedding (§7.9): argument (t·1000) in float32, then · f_i with f_i = exp((float32(−ln 10000) · i) / 128), each
  operation in float32, then cos/sin in float32; cos first.
* CFG: the estimator runs once per step on a batch of two rows (row 0 = (x, μ, s, cond), row 1 = (x, 0, 0, 0), same
  t); v = float32(1.7)·v0 − float32(0.7)·v1 (torch rounds the python scalars 1 + 0.7 and 0.7 to float32).
* DiT attention: softmax((q·k^T) · head_dim^−0.5) v, the scale applied to the scores (torch 1.13 has no SDPA; the
  scale is a power of two for head_dim 16 and 64, so where it is applied does not change a bit);
  q/k LayerNorm per head (eps 1e-5, affine); adaLN LayerNorms without affine, eps 1e-6; GELU tanh; Mish in the conv
  block; causal convs pad k−1 = 2 zeros on the left; ConvBlock LayerNorm eps 1e-5.
* Speaker: F.normalize (x / max(‖x‖₂, 1e-12)) then the affine layer. Token embedding of max(u, 0).
* Noise: `CausalConditionalCFM.forward(..., noise=z)` takes z [1, 80, T] (§9); without it the slice of the
  non-persistent `rand_noise` buffer [1, 80, 30000] (drawn at construction, unseeded upstream) is used.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# float32 τ_k of the 10-step cosine schedule as torch 1.13 computes them (see module docstring).
TAU_HEX = ["0x0.0p+0", "0x1.936d8p-7", "0x1.90f1ep-5", "0x1.be6ffp-4", "0x1.872218p-3", "0x1.2bec34p-2",
           "0x1.a61ba4p-2", "0x1.178e8ep-1", "0x1.61c888p-1", "0x1.afe7d2p-1", "0x1.0p+0"]


def cosine_t_span(n_timesteps=10, dtype=torch.float32):
    t_span = torch.linspace(0, 1, n_timesteps + 1, dtype=dtype)
    return 1 - torch.cos(t_span * 0.5 * torch.pi)


# ---------------------------------------------------------------------------------------------------------------
# Encoder (§7.7): ESPnet/WeNet building blocks as CosyVoice 2 uses them.
# ---------------------------------------------------------------------------------------------------------------

class EspnetRelPositionalEncoding(nn.Module):
    """x·sqrt(d) and the 2T−1 relative positional rows PE(r), r = T−1 … −(T−1) (no parameters)."""

    def __init__(self, d_model, dropout_rate=0.0, max_len=5000):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(self.d_model)
        self.dropout = nn.Dropout(p=dropout_rate)
        self.pe = None
        self.extend_pe(torch.tensor(0.0).expand(1, max_len))

    def extend_pe(self, x):
        if self.pe is not None and self.pe.size(1) >= x.size(1) * 2 - 1:
            return
        pe_positive = torch.zeros(x.size(1), self.d_model)
        pe_negative = torch.zeros(x.size(1), self.d_model)
        position = torch.arange(0, x.size(1), dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32)
                             * -(math.log(10000.0) / self.d_model))
        pe_positive[:, 0::2] = torch.sin(position * div_term)
        pe_positive[:, 1::2] = torch.cos(position * div_term)
        pe_negative[:, 0::2] = torch.sin(-1 * position * div_term)
        pe_negative[:, 1::2] = torch.cos(-1 * position * div_term)
        pe_positive = torch.flip(pe_positive, [0]).unsqueeze(0)
        pe_negative = pe_negative[1:].unsqueeze(0)
        self.pe = torch.cat([pe_positive, pe_negative], dim=1).to(dtype=x.dtype)

    def position_encoding(self, size, offset=0):
        return self.pe[:, self.pe.size(1) // 2 - size + 1: self.pe.size(1) // 2 + size]

    def forward(self, x, offset=0):
        self.extend_pe(x)
        x = x * self.xscale
        pos_emb = self.position_encoding(size=x.size(1), offset=offset)
        return self.dropout(x), self.dropout(pos_emb)


class LinearNoSubsampling(nn.Module):
    """`embed` / `up_embed`: out = [Linear, LayerNorm(1e-5), Dropout], then the rel-pos encoding (×sqrt(d))."""

    def __init__(self, idim, odim, dropout_rate, pos_enc_class):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=1e-5), nn.Dropout(dropout_rate))
        self.pos_enc = pos_enc_class

    def forward(self, x, x_mask, offset=0):
        x = self.out(x)
        x, pos_emb = self.pos_enc(x, offset)
        return x, pos_emb, x_mask


class PreLookaheadLayer(nn.Module):
    """Right-pad L zeros, conv1 (k = L+1) + LeakyReLU(0.01), left-pad 2, conv2 (k = 3), residual. [B,T,C] in and out."""

    def __init__(self, channels, pre_lookahead_len=1):
        super().__init__()
        self.channels = channels
        self.pre_lookahead_len = pre_lookahead_len
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=pre_lookahead_len + 1, stride=1, padding=0)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, stride=1, padding=0)

    def forward(self, inputs):
        outputs = inputs.transpose(1, 2).contiguous()
        outputs = F.pad(outputs, (0, self.pre_lookahead_len), mode="constant", value=0.0)
        outputs = F.leaky_relu(self.conv1(outputs))
        outputs = F.pad(outputs, (2, 0), mode="constant", value=0.0)
        outputs = self.conv2(outputs)
        outputs = outputs.transpose(1, 2).contiguous()
        return outputs + inputs


class Upsample1D(nn.Module):
    """`up_layer`: nearest ×scale_factor in time, left-pad 2·stride zeros, Conv1d(k = 2·stride+1). Channels-first;
    returns (y [B, C, 2T], lengths·stride)."""

    def __init__(self, channels, out_channels, stride=2, scale_factor=None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels
        self.stride = stride
        self.scale_factor = float(self.stride) if scale_factor is None else float(scale_factor)
        self.conv = nn.Conv1d(self.channels, self.out_channels, stride * 2 + 1, stride=1, padding=0)

    def forward(self, inputs, input_lengths):
        outputs = F.interpolate(inputs, scale_factor=self.scale_factor, mode="nearest")
        outputs = F.pad(outputs, (self.stride * 2, 0), value=0.0)
        outputs = self.conv(outputs)
        return outputs, input_lengths * self.stride


class MultiHeadedAttention(nn.Module):
    """WeNet multi-head attention (linear_q/k/v/out)."""

    def __init__(self, n_head, n_feat, dropout_rate, key_bias=True):
        super().__init__()
        assert n_feat % n_head == 0
        self.d_k = n_feat // n_head
        self.h = n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat, bias=key_bias)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout = nn.Dropout(p=dropout_rate)

    def forward_qkv(self, query, key, value):
        n_batch = query.size(0)
        q = self.linear_q(query).view(n_batch, -1, self.h, self.d_k).transpose(1, 2)
        k = self.linear_k(key).view(n_batch, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(value).view(n_batch, -1, self.h, self.d_k).transpose(1, 2)
        return q, k, v  # [B, H, T, d_k]

    def forward_attention(self, value, scores, mask):
        n_batch = value.size(0)
        if mask is not None and mask.size(2) > 0:
            mask = mask.unsqueeze(1).eq(0)[:, :, :, :scores.size(-1)]
            scores = scores.masked_fill(mask, -float("inf"))
            attn = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
        else:
            attn = torch.softmax(scores, dim=-1)
        x = torch.matmul(self.dropout(attn), value)
        x = x.transpose(1, 2).contiguous().view(n_batch, -1, self.h * self.d_k)
        return self.linear_out(x)


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    """ESPnet rel-pos self-attention with pos_bias_u/v and the Transformer-XL rel_shift (§7.7). Returns (out, cache)."""

    def __init__(self, n_head, n_feat, dropout_rate, key_bias=True):
        super().__init__(n_head, n_feat, dropout_rate, key_bias)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.Tensor(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.Tensor(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    @staticmethod
    def rel_shift(x):
        """[B, H, T, 2T−1] scores against rows r = T−1 … −(T−1) → [B, H, T, T] with out[i, j] = x[i, T−1−i+j]."""
        zero_pad = torch.zeros((x.size()[0], x.size()[1], x.size()[2], 1), device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=-1)
        x_padded = x_padded.view(x.size()[0], x.size()[1], x.size(3) + 1, x.size(2))
        return x_padded[:, :, 1:].view_as(x)[:, :, :, : x.size(-1) // 2 + 1]

    def forward(self, query, key, value, mask, pos_emb, cache=None):
        q, k, v = self.forward_qkv(query, key, value)
        q = q.transpose(1, 2)  # [B, T, H, d_k]
        n_batch_pos = pos_emb.size(0)
        p = self.linear_pos(pos_emb).view(n_batch_pos, -1, self.h, self.d_k).transpose(1, 2)  # [1, H, 2T−1, d_k]
        q_with_bias_u = (q + self.pos_bias_u).transpose(1, 2)
        q_with_bias_v = (q + self.pos_bias_v).transpose(1, 2)
        matrix_ac = torch.matmul(q_with_bias_u, k.transpose(-2, -1))
        matrix_bd = torch.matmul(q_with_bias_v, p.transpose(-2, -1))
        if matrix_ac.shape != matrix_bd.shape:
            matrix_bd = self.rel_shift(matrix_bd)
        scores = (matrix_ac + matrix_bd) / math.sqrt(self.d_k)
        return self.forward_attention(v, scores, mask), torch.cat((k, v), dim=-1)


class PositionwiseFeedForward(nn.Module):
    """w_1, SiLU (swish), w_2."""

    def __init__(self, idim, hidden_units, dropout_rate, activation=None):
        super().__init__()
        self.w_1 = nn.Linear(idim, hidden_units)
        self.activation = nn.SiLU() if activation is None else activation
        self.dropout = nn.Dropout(dropout_rate)
        self.w_2 = nn.Linear(hidden_units, idim)

    def forward(self, xs):
        return self.w_2(self.dropout(self.activation(self.w_1(xs))))


class ConformerEncoderLayer(nn.Module):
    """Pre-LN layer without macaron FFN or conv module: x += MHA(LN_mha(x)); x += FFN(LN_ff(x)). Returns (x, mask, …)."""

    def __init__(self, size, self_attn, feed_forward, dropout_rate=0.1, normalize_before=True):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.norm_ff = nn.LayerNorm(size, eps=1e-12)
        self.norm_mha = nn.LayerNorm(size, eps=1e-12)
        self.ff_scale = 1.0
        self.dropout = nn.Dropout(dropout_rate)
        self.size = size
        self.normalize_before = normalize_before
        if not normalize_before:
            raise ValueError("only normalize_before=True (the flow.yaml value) is implemented")

    def forward(self, x, mask, pos_emb, mask_pad=None):
        residual = x
        x = self.norm_mha(x)
        x_att, new_att_cache = self.self_attn(x, x, x, mask, pos_emb)
        x = residual + self.dropout(x_att)
        residual = x
        x = self.norm_ff(x)
        x = residual + self.ff_scale * self.dropout(self.feed_forward(x))
        return x, mask, new_att_cache, torch.zeros((0, 0, 0))


class UpsampleConformerEncoderV2(nn.Module):
    """embed → pre_lookahead_layer → encoders → up_layer (×2) → up_embed → up_encoders → after_norm (§7.7).
    forward(xs [B, T, input_size], xs_lens [B]) → (ys [B, 2T, output_size], masks [B, 1, 2T])."""

    def __init__(self, input_size, output_size=256, attention_heads=4, linear_units=2048, num_blocks=6,
                 dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.0, input_layer="linear",
                 pos_enc_layer_type="rel_pos_espnet", normalize_before=True, selfattention_layer_type="rel_selfattn",
                 activation_type="swish", key_bias=True, up_stride=2, pre_lookahead_len=3, num_up_blocks=4,
                 up_scale_factor=2, static_chunk_size=0, use_dynamic_chunk=False, macaron_style=False,
                 use_cnn_module=False):
        super().__init__()
        unsupported = {"input_layer": (input_layer, "linear"), "pos_enc_layer_type": (pos_enc_layer_type,
                       "rel_pos_espnet"), "selfattention_layer_type": (selfattention_layer_type, "rel_selfattn"),
                       "activation_type": (activation_type, "swish"), "normalize_before": (normalize_before, True),
                       "static_chunk_size": (static_chunk_size, 0), "use_dynamic_chunk": (use_dynamic_chunk, False),
                       "macaron_style": (macaron_style, False), "use_cnn_module": (use_cnn_module, False)}
        for k, (got, want) in unsupported.items():
            if got != want:
                raise ValueError(f"UpsampleConformerEncoderV2: {k}={got!r} is not implemented (only {want!r})")
        self._output_size = output_size
        self.embed = LinearNoSubsampling(input_size, output_size, dropout_rate,
                                         EspnetRelPositionalEncoding(output_size, positional_dropout_rate))
        self.normalize_before = normalize_before
        self.after_norm = nn.LayerNorm(output_size, eps=1e-5)

        def layer():
            return ConformerEncoderLayer(
                output_size,
                RelPositionMultiHeadedAttention(attention_heads, output_size, attention_dropout_rate, key_bias),
                PositionwiseFeedForward(output_size, linear_units, dropout_rate), dropout_rate, normalize_before)

        self.pre_lookahead_layer = PreLookaheadLayer(channels=output_size, pre_lookahead_len=pre_lookahead_len)
        self.encoders = nn.ModuleList([layer() for _ in range(num_blocks)])
        self.up_layer = Upsample1D(channels=output_size, out_channels=output_size, stride=up_stride,
                                   scale_factor=up_scale_factor)
        self.up_embed = LinearNoSubsampling(input_size, output_size, dropout_rate,
                                            EspnetRelPositionalEncoding(output_size, positional_dropout_rate))
        self.up_encoders = nn.ModuleList([layer() for _ in range(num_up_blocks)])

    def output_size(self):
        return self._output_size

    def forward(self, xs, xs_lens):
        T = xs.size(1)
        masks = (torch.arange(T)[None, :] < xs_lens[:, None]).unsqueeze(1)  # [B, 1, T] padding mask
        xs, pos_emb, masks = self.embed(xs, masks)
        xs = self.pre_lookahead_layer(xs)
        for layer in self.encoders:
            xs, _, _, _ = layer(xs, masks, pos_emb)
        xs = xs.transpose(1, 2).contiguous()
        xs, xs_lens = self.up_layer(xs, xs_lens)
        xs = xs.transpose(1, 2).contiguous()
        T = xs.size(1)
        masks = (torch.arange(T)[None, :] < xs_lens[:, None]).unsqueeze(1)
        xs, pos_emb, masks = self.up_embed(xs, masks)
        for layer in self.up_encoders:
            xs, _, _, _ = layer(xs, masks, pos_emb)
        xs = self.after_norm(xs)
        return xs, masks


# ---------------------------------------------------------------------------------------------------------------
# DiT estimator (§7.9)
# ---------------------------------------------------------------------------------------------------------------

def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """mlp(Linear 256→H, SiLU, Linear H→H) of [cos(1000t·f), sin(1000t·f)] (cos first)."""

    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, bias=True), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size, bias=True))
        self.frequency_embedding_size = frequency_embedding_size
        self.scale = 1000

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        t_freq = self.timestep_embedding(t * self.scale, self.frequency_embedding_size)
        return self.mlp(t_freq)


class Attention(nn.Module):
    """to_q/to_k/to_v (bias), per-head q_norm/k_norm LayerNorm(head_dim), softmax attention, proj. No positions."""

    def __init__(self, dim, num_heads=8, head_dim=64, qkv_bias=True, qk_norm=True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.inner_dim = num_heads * head_dim
        self.scale = head_dim ** -0.5
        self.to_q = nn.Linear(dim, self.inner_dim, bias=qkv_bias)
        self.to_k = nn.Linear(dim, self.inner_dim, bias=qkv_bias)
        self.to_v = nn.Linear(dim, self.inner_dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(self.inner_dim, dim)

    def forward(self, x, attn_mask):
        B, N, _ = x.shape
        q = self.to_q(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.to_k(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.to_v(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        q = self.q_norm(q)
        k = self.k_norm(k)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        scores = scores.masked_fill(~attn_mask.unsqueeze(1), -float("inf"))  # attn_mask [B, 1, N] (keys)
        x = torch.matmul(torch.softmax(scores, dim=-1), v)
        x = x.transpose(1, 2).reshape(B, N, self.inner_dim)
        return self.proj(x)


class Mlp(nn.Module):
    """timm Mlp: fc1, GELU(tanh), fc2."""

    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Transpose(nn.Module):
    def __init__(self, dim0, dim1):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x):
        return x.transpose(self.dim0, self.dim1)


class CausalConv1d(nn.Conv1d):
    """Conv1d with k−1 zeros padded on the left (no lookahead)."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=0)
        self.causal_padding = kernel_size - 1

    def forward(self, x):
        return super().forward(F.pad(x, (self.causal_padding, 0), value=0.0))


class CausalConvBlock(nn.Module):
    """`conv.block` = [Transpose, CausalConv1d (1), Transpose, LayerNorm (3), Transpose, Mish, CausalConv1d (6),
    Transpose]: [B, T, C] in and out."""

    def __init__(self, in_channels, out_channels, kernel_size=3):
        super().__init__()
        self.block = nn.Sequential(
            Transpose(1, 2), CausalConv1d(in_channels, out_channels, kernel_size), Transpose(1, 2),
            nn.LayerNorm(out_channels, eps=1e-5), Transpose(1, 2), nn.Mish(),
            CausalConv1d(out_channels, out_channels, kernel_size), Transpose(1, 2))

    def forward(self, x):
        return self.block(x)


class DiTBlock(nn.Module):
    """9-way adaLN block: attention, causal conv block, MLP, each gated (order attn → conv → mlp, §7.9)."""

    def __init__(self, hidden_size, num_heads, head_dim, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, head_dim=head_dim, qkv_bias=True, qk_norm=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.norm3 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.conv = CausalConvBlock(hidden_size, hidden_size, kernel_size=3)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 9 * hidden_size, bias=True))

    def forward(self, x, c, attn_mask):
        (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp,
         shift_conv, scale_conv, gate_conv) = self.adaLN_modulation(c).chunk(9, dim=-1)
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), attn_mask)
        x = x + gate_conv * self.conv(modulate(self.norm3(x), shift_conv, scale_conv))
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """(shift, scale) = adaLN(c); linear(modulate(LN(x))) with LN non-affine eps 1e-6."""

    def __init__(self, hidden_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """forward(x, mask, mu, t, spks, cond): x/mu/cond [B, 80, T], mask [B, 1, T], t [B], spks [B, 80] → [B, 80, T]."""

    def __init__(self, in_channels, out_channels, mlp_ratio=4.0, depth=28, num_heads=8, head_dim=64,
                 hidden_size=256):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.in_proj = nn.Linear(in_channels, hidden_size)
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, head_dim, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, out_channels)

    def forward(self, x, mask, mu, t, spks=None, cond=None):
        c = self.t_embedder(t).unsqueeze(1)  # [B, 1, H]
        x = torch.cat([x, mu], dim=1)
        if spks is not None:
            x = torch.cat([x, spks.unsqueeze(-1).expand(-1, -1, x.shape[-1])], dim=1)
        if cond is not None:
            x = torch.cat([x, cond], dim=1)
        x = x.transpose(1, 2)  # [B, T, 320]
        attn_mask = mask.bool()
        x = self.in_proj(x)
        for block in self.blocks:
            x = block(x, c, attn_mask)
        x = self.final_layer(x, c)
        return x.transpose(1, 2)


# ---------------------------------------------------------------------------------------------------------------
# Flow matching (§7.8) and the flow model (§7.6)
# ---------------------------------------------------------------------------------------------------------------

class CausalConditionalCFM(nn.Module):
    """10-step Euler on the cosine schedule with CFG as a batch of two. forward(...) → (x [1, 80, T], None)."""

    def __init__(self, in_channels=240, cfm_params=None, n_spks=1, spk_emb_dim=64, estimator=None,
                 inference_cfg_rate=0.5, noise_frames=30000):
        super().__init__()
        self.inference_cfg_rate = inference_cfg_rate
        self.estimator = estimator
        self.register_buffer("rand_noise", torch.randn([1, 80, noise_frames]), persistent=False)

    @torch.no_grad()
    def forward(self, mu, mask, spks, cond, n_timesteps=10, temperature=1.0, noise=None):
        z = self.rand_noise[:, :, :mu.size(2)] if noise is None else noise
        if z.shape != mu.shape:
            raise ValueError(f"noise {tuple(z.shape)} must match mu {tuple(mu.shape)}")
        z = z.to(mu.dtype) * temperature
        t_span = cosine_t_span(n_timesteps, mu.dtype)
        return self.solve_euler(z, t_span=t_span, mu=mu, mask=mask, spks=spks, cond=cond), None

    def solve_euler(self, x, t_span, mu, mask, spks, cond):
        t, dt = t_span[0], t_span[1] - t_span[0]
        t = t.unsqueeze(dim=0)
        T = x.size(2)
        x_in = torch.zeros([2, 80, T], dtype=x.dtype)
        mask_in = torch.zeros([2, 1, T], dtype=x.dtype)
        mu_in = torch.zeros([2, 80, T], dtype=x.dtype)
        t_in = torch.zeros([2], dtype=x.dtype)
        spks_in = torch.zeros([2, 80], dtype=x.dtype)
        cond_in = torch.zeros([2, 80, T], dtype=x.dtype)
        for step in range(1, len(t_span)):
            x_in[:] = x
            mask_in[:] = mask
            mu_in[0] = mu
            t_in[:] = t
            spks_in[0] = spks
            cond_in[0] = cond
            dphi_dt = self.estimator(x_in, mask_in, mu_in, t_in, spks_in, cond_in)
            dphi_dt, cfg_dphi_dt = torch.split(dphi_dt, [x.size(0), x.size(0)], dim=0)
            dphi_dt = (1.0 + self.inference_cfg_rate) * dphi_dt - self.inference_cfg_rate * cfg_dphi_dt
            x = x + dt * dphi_dt
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return x.float()


class CausalMaskedDiffWithXvec(nn.Module):
    """Token2wav flow: codes + prompt → mel (§7.6). `inference(...)` → (mel [1, 80, 2N], None)."""

    def __init__(self, input_size=512, output_size=80, spk_embed_dim=192, output_type="mel", vocab_size=6561,
                 encoder=None, decoder=None, input_frame_rate=25, only_mask_loss=True, token_mel_ratio=2,
                 pre_lookahead_len=3):
        super().__init__()
        if output_type != "mel":
            raise ValueError(f"output_type {output_type!r} is not implemented (only 'mel')")
        self.input_size = input_size
        self.output_size = output_size
        self.vocab_size = vocab_size
        self.input_embedding = nn.Embedding(vocab_size, input_size)
        self.spk_embed_affine_layer = nn.Linear(spk_embed_dim, output_size)
        self.encoder = encoder
        self.encoder_proj = nn.Linear(self.encoder.output_size(), output_size)
        self.decoder = decoder

    @torch.no_grad()
    def inference(self, token, token_len, prompt_token, prompt_token_len, prompt_feat, prompt_feat_len, embedding,
                  n_timesteps=10, noise=None):
        """token [1, N] int64, prompt_token [1, P], prompt_feat [1, 2P, 80], embedding [1, 192], noise [1, 80, 2(P+N)]."""
        assert token.shape[0] == 1, "batch size is fixed to 1"
        embedding = F.normalize(embedding, dim=1)
        embedding = self.spk_embed_affine_layer(embedding)
        token, token_len = torch.concat([prompt_token, token], dim=1), prompt_token_len + token_len
        mask = (torch.arange(token.size(1))[None, :] < token_len[:, None]).unsqueeze(-1).to(embedding)
        token = self.input_embedding(torch.clamp(token, min=0)) * mask
        h, h_masks = self.encoder(token, token_len)
        h = self.encoder_proj(h)
        mel_len1 = prompt_feat.shape[1]
        if mel_len1 > h.shape[1]:
            raise ValueError("prompt mel longer than the flow sequence")
        conds = torch.zeros_like(h)
        conds[:, :mel_len1] = prompt_feat
        conds = conds.transpose(1, 2)
        mask = h_masks.to(h)  # [1, 1, 2(P+N)]
        feat, _ = self.decoder(mu=h.transpose(1, 2).contiguous(), mask=mask, spks=embedding, cond=conds,
                               n_timesteps=n_timesteps, noise=noise)
        feat = feat[:, :, mel_len1:]
        return feat.float(), None


# ---------------------------------------------------------------------------------------------------------------
# flow.yaml
# ---------------------------------------------------------------------------------------------------------------

CLASSES = {c.__name__: c for c in (CausalMaskedDiffWithXvec, UpsampleConformerEncoderV2, CausalConditionalCFM, DiT)}


def load_flow_yaml(path_or_text):
    """Builds the flow from a flow.yaml (HyperPyYAML `!new:` subset; the class is chosen by the tag's last name).
    Returns the object under the top-level `flow` key."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_new(loader, tag_suffix, node):
        name = tag_suffix.rsplit(".", 1)[-1]
        if name not in CLASSES:
            raise ValueError(f"flow.yaml: unknown class {tag_suffix!r}")
        kwargs = loader.construct_mapping(node, deep=True)
        return CLASSES[name](**kwargs)

    Loader.add_multi_constructor("!new:", construct_new)
    text = path_or_text
    if "\n" not in path_or_text:
        with open(path_or_text, "r", encoding="utf-8") as f:
            text = f.read()
    return yaml.load(text, Loader=Loader)["flow"]
