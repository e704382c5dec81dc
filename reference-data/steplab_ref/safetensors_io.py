"""Minimal safetensors writer/reader (format spec: 8-byte LE header length, JSON header, raw LE data).

The `safetensors` Python package is not packaged for Debian 12; this follows its published format exactly:
tensors sorted by (descending dtype alignment, name), header padded with spaces to a multiple of 8.
"""
import json
import struct

import numpy as np
import torch

_DTYPES = {
    torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2), torch.float64: ("F64", 8),
    torch.int64: ("I64", 8), torch.int32: ("I32", 4), torch.int16: ("I16", 2), torch.int8: ("I8", 1),
    torch.uint8: ("U8", 1), torch.bool: ("BOOL", 1),
}
_BY_NAME = {v[0]: k for k, v in _DTYPES.items()}
# torch 1.13 has no uint32: MLX's packed quantized weights (dtype "U32") travel as numpy uint32 arrays.
_U32 = ("U32", 4)


def _entry(t):
    return _U32 if isinstance(t, np.ndarray) else _DTYPES[t.dtype]


def tensor_bytes(t) -> bytes:
    if isinstance(t, np.ndarray):
        if t.dtype != np.uint32:
            raise TypeError(f"numpy arrays are written only as U32, got {t.dtype}")
        return np.ascontiguousarray(t).astype("<u4").tobytes()
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bool:
        return t.numpy().astype(np.uint8).tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def save_file(tensors: dict, path: str, metadata: dict = None):
    items = sorted(tensors.items(), key=lambda kv: (-_entry(kv[1])[1], kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in items:
        data = tensor_bytes(t)
        header[name] = {"dtype": _entry(t)[0], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_file(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = bytearray(raw[base + b: base + end])
        if e["dtype"] == "U32":
            out[name] = np.frombuffer(bytes(buf), dtype="<u4").astype(np.uint32).reshape(e["shape"])
            continue
        dtype = _BY_NAME[e["dtype"]]
        if dtype in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(buf, dtype=torch.int16).view(dtype) if buf else torch.empty(0, dtype=dtype)
        elif dtype == torch.bool:
            t = torch.frombuffer(buf, dtype=torch.uint8).to(torch.bool) if buf else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out
