"""MLX's affine quantization, written independently from its description (issue 15, spec of `mx.quantize` mode "affine").

Layout of one quantized matrix W [out, in] (group size g, bits b):
  weight  uint32 [out, in*b/32]  the row's b-bit codes as one little-endian bit stream: code i occupies bits
                                 i*b .. i*b+b-1 of the row, least-significant bit first (so 4-bit code 0 is bits 0-3
                                 of the first word; 3/5/6-bit codes straddle bytes and words)
  scales  [out, in/g]            in W's dtype
  biases  [out, in/g]            in W's dtype;  w ~= scale * q + bias

Quantizer (MLX's CPU kernel, all in float32): per group, lo/hi = min/max; step = max((hi - lo) / (2^b - 1), 1e-7);
the larger-magnitude end (lo when |lo| > |hi|, else hi, with the step negated) is the "edge"; q0 = rint(edge / step);
when q0 != 0 the step becomes edge / q0 and the bias the edge (the edge is then exactly representable), else bias 0;
q = clamp(rint((w - bias) / step), 0, 2^b - 1). scale/bias are rounded to W's dtype only when stored.

This module is vectorised numpy (packbits for the bit stream); the C# quantizer loops per group and shifts words, so
the two share no code path.
"""
import numpy as np
import torch

BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)


def quantize(w: torch.Tensor, bits: int, group_size: int):
    """w: [out, in] float32 or bfloat16 tensor. Returns (packed uint32 ndarray, scales, biases in w's dtype)."""
    assert bits in BITS and group_size in GROUP_SIZES, (bits, group_size)
    rows, cols = w.shape
    assert cols % group_size == 0, f"in={cols} is not a multiple of group_size={group_size}"
    x = w.detach().to(torch.float32).numpy().reshape(-1, group_size)  # bf16 -> f32 is exact
    f32 = np.float32
    n_bins = f32(2 ** bits - 1)
    hi = x.max(axis=1)
    lo = x.min(axis=1)
    low_is_edge = np.abs(lo) > np.abs(hi)
    step = np.maximum((hi - lo) / n_bins, f32(1e-7)).astype(f32)
    step = np.where(low_is_edge, step, -step).astype(f32)
    edge = np.where(low_is_edge, lo, hi).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q0 = np.rint(edge / step).astype(f32)
        nonzero = q0 != 0
        scale = np.where(nonzero, edge / q0, step).astype(f32)
    bias = np.where(nonzero, edge, f32(0)).astype(f32)
    q = np.rint((x - bias[:, None]) / scale[:, None]).astype(f32)
    q = np.clip(q, f32(0), n_bins).astype(np.uint64).reshape(rows, cols)
    packed = pack(q, bits)
    dtype = w.dtype
    scales = torch.from_numpy(scale.reshape(rows, cols // group_size).copy()).to(dtype)
    biases = torch.from_numpy(bias.reshape(rows, cols // group_size).copy()).to(dtype)
    return packed, scales, biases


def pack(q: np.ndarray, bits: int) -> np.ndarray:
    """[rows, cols] integer codes -> uint32 [rows, cols*bits/32]: each row one little-endian bit stream."""
    rows, cols = q.shape
    assert (cols * bits) % 32 == 0
    q = q.astype(np.uint64)
    bit_planes = ((q[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)  # [rows, cols, bits]
    stream = np.packbits(bit_planes.reshape(rows, cols * bits), axis=1, bitorder="little")  # bytes, LSB first
    return np.ascontiguousarray(stream).view("<u4").astype(np.uint32).reshape(rows, cols * bits // 32)


def unpack(packed: np.ndarray, bits: int, cols: int) -> np.ndarray:
    """Inverse of pack: uint32 [rows, cols*bits/32] -> int64 codes [rows, cols]."""
    rows = packed.shape[0]
    stream = np.ascontiguousarray(packed.astype("<u4")).view(np.uint8).reshape(rows, -1)
    bit_planes = np.unpackbits(stream, axis=1, bitorder="little")[:, : cols * bits].reshape(rows, cols, bits)
    return (bit_planes.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=2)


def dequantize(packed: np.ndarray, scales: torch.Tensor, biases: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """float32 [out, in] = scale * q + bias (a float32 product, then a float32 sum)."""
    rows, groups = scales.shape
    cols = groups * group_size
    q = unpack(packed, bits, cols).astype(np.float32).reshape(rows, groups, group_size)
    s = scales.to(torch.float32).numpy()[:, :, None]
    b = biases.to(torch.float32).numpy()[:, :, None]
    w = (s * q).astype(np.float32) + b
    return torch.from_numpy(w.astype(np.float32).reshape(rows, cols))
