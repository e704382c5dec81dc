#!/usr/bin/env python3
"""Deterministic safetensors fixtures for the C# reader/writer tests, and an independent verifier.

The `safetensors` Python package is not available here, so the format is implemented from its published
spec (https://github.com/huggingface/safetensors, README "Format" and safetensors/src/tensor.rs):

  * 8 bytes: N, the header length, unsigned 64-bit little-endian;
  * N bytes: UTF-8 JSON object {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...},
    compact (no spaces), padded with spaces so that N is a multiple of 8;
  * the data section: raw little-endian C-order bytes; data_offsets are [begin, end) relative to it.

The writer lays tensors out exactly as the package's Rust `prepare` does: sorted by *descending* rank of
the Rust `Dtype` enum (BOOL < U8 < I8 < I16 < F16 < BF16 < I32 < F32 < F64 < I64), then by name (byte
order), contiguous, `__metadata__` first. The package keeps metadata in a HashMap (arbitrary order); we
sort its keys so files are reproducible. The C# SafetensorsWriter follows the same rules, so its output
must be byte-identical to `serialize` here.

Usage (always with Debian's /usr/bin/python3, which has torch and numpy):
  /usr/bin/python3 reference-data/make_safetensors_fixtures.py
      regenerate reference-data/fixtures/safetensors/ (bit-identical on every run)
  /usr/bin/python3 reference-data/make_safetensors_fixtures.py --verify FILE EXPECTED_JSON
      parse FILE as strictly as the safetensors package does, compare every tensor bit-exactly with the
      torch tensors of the set named in EXPECTED_JSON (and with the bytes recorded there), and check that
      FILE is in canonical layout; prints "OK ..." and exits 0, or prints the faults and exits 1.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "safetensors")
MAX_HEADER = 100_000_000

# safetensors dtype name -> (torch dtype, numpy dtype of the raw bytes, rank in the Rust Dtype enum)
DTYPES = {
    "BOOL": (torch.bool, np.bool_, 0),
    "U8": (torch.uint8, np.uint8, 1),
    "I8": (torch.int8, np.int8, 2),
    "I16": (torch.int16, np.int16, 5),
    "F16": (torch.float16, np.float16, 7),
    "BF16": (torch.bfloat16, np.int16, 8),  # numpy has no bf16: carry the bit patterns as int16
    "I32": (torch.int32, np.int32, 9),
    "F32": (torch.float32, np.float32, 11),
    "F64": (torch.float64, np.float64, 12),
    "I64": (torch.int64, np.int64, 13),
}
NAME_OF = {v[0]: k for k, v in DTYPES.items()}
FLOATS = {"F16", "BF16", "F32", "F64"}


# ------------------------------------------------------------------------------------------ format

def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def tensor_from_bytes(raw, dtype_name, shape):
    torch_dtype, np_dtype, _ = DTYPES[dtype_name]
    t = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).copy())
    if torch_dtype == torch.bfloat16:
        t = t.view(torch.bfloat16)
    return t.reshape(shape)


def serialize(tensors, metadata=None):
    """The bytes the safetensors package writes for {name: tensor} (+ metadata)."""
    items = sorted(tensors.items(), key=lambda kv: (-DTYPES[NAME_OF[kv[1].dtype]][2], kv[0].encode("utf-8")))
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items(), key=lambda kv: kv[0].encode("utf-8")))
    for name, t in items:
        raw = tensor_bytes(t)
        header[name] = {"dtype": NAME_OF[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def parse(data):
    """Parse and validate like safetensors' Rust read_metadata + validate. Returns (metadata, {name: tensor})."""
    if len(data) < 8:
        raise ValueError("HeaderTooSmall")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER:
        raise ValueError("HeaderTooLarge")
    if 8 + n > len(data):
        raise ValueError("InvalidHeaderLength")
    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise ValueError("InvalidHeaderDeserialization: header is not an object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise ValueError("InvalidHeaderDeserialization: __metadata__ is not a str->str map")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") not in DTYPES:
            raise ValueError(f"InvalidHeaderDeserialization: entry {name!r}")
        shape, offs = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError(f"InvalidHeaderDeserialization: shape of {name!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and o >= 0 for o in offs)):
            raise ValueError(f"InvalidHeaderDeserialization: data_offsets of {name!r}")
        entries.append((name, info["dtype"], shape, offs[0], offs[1]))
    entries.sort(key=lambda e: (e[3], e[4]))
    start, tensors = 0, {}
    for name, dtype, shape, b, e in entries:
        if b != start or e < b:
            raise ValueError(f"InvalidOffset({name})")
        itemsize = np.dtype(DTYPES[dtype][1]).itemsize
        if e - b != int(np.prod(shape, dtype=object)) * itemsize:
            raise ValueError(f"TensorInvalidInfo({name})")
        start = e
        tensors[name] = tensor_from_bytes(data[8 + n + b:8 + n + e], dtype, shape)
    if start + 8 + n != len(data):
        raise ValueError("MetadataIncompleteBuffer")
    return metadata, tensors


# ------------------------------------------------------------------------------------------ tensor sets

def all_dtypes():
    """Every dtype, special values (NaN, ±inf, -0, subnormals, extremes), a scalar, an empty tensor, and names
    that need JSON escaping or sort differently in UTF-16 and UTF-8 ('\\uff01' < '\\U0001f600' only in UTF-8)."""
    g = torch.Generator().manual_seed(20240611)
    t = {}
    f32 = torch.randn(4, 3, 2, generator=g)
    f32.view(-1)[:6] = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0, 1e-45, 3.4028234663852886e38])
    t["encoder.blocks.0.attn.query.weight"] = f32
    t["adapter.linear1.bias"] = torch.randn(5, generator=g)
    t["scalar.f32"] = torch.tensor(3.25)
    t["empty.f32"] = torch.zeros(0, 3)
    t["name \"with\" \\escapes\\\t\n"] = torch.randn(2, generator=g)
    t["unicod\u00e9.\u00fc"] = torch.randn(1, 2, generator=g)
    t["\uff01.fullwidth"] = torch.randn(3, generator=g)
    t["\U0001f600.emoji"] = torch.randn(3, generator=g)
    f16 = (torch.randn(3, 5, generator=g) * 100).half()
    f16.view(-1)[:5] = torch.tensor([float("nan"), float("inf"), -0.0, 6e-8, 65504.0]).half()
    t["f16.values"] = f16
    bf16 = torch.randn(6, 4, generator=g).to(torch.bfloat16)
    bf16.view(-1)[:4] = torch.tensor([1e-40, float("-inf"), 3.0e38, -0.0]).to(torch.bfloat16)
    t["model.embed_tokens.weight"] = bf16
    f64 = torch.randn(5, dtype=torch.float64, generator=g)
    f64[0] = 5e-324
    f64[1] = -1.7976931348623157e308
    t["f64.values"] = f64
    i64 = torch.randint(-2**62, 2**62, (7,), generator=g, dtype=torch.int64)
    i64[0], i64[1] = -2**63, 2**63 - 1
    t["input.ids"] = i64
    i32 = torch.randint(-2**31, 2**31 - 1, (2, 3), generator=g, dtype=torch.int32)
    i32[0, 0], i32[0, 1] = -2**31, 2**31 - 1
    t["i32.values"] = i32
    t["i16.values"] = torch.tensor([-32768, 32767, -1, 12345], dtype=torch.int16)
    t["i8.values"] = torch.randint(-128, 128, (2, 2, 2), generator=g, dtype=torch.int8)
    t["u8.values"] = torch.randint(0, 256, (9,), generator=g, dtype=torch.uint8)
    t["bool.mask"] = torch.randint(0, 2, (3, 3), generator=g) > 0
    return t, {"format": "pt", "producer": "make_safetensors_fixtures.py", "z\u00e9ta": "\u00e9\"\\"}


SHARDS = {
    "model-00001-of-00002.safetensors": [
        ("model.embed_tokens.weight", (8, 4), torch.bfloat16),
        ("model.layers.0.input_layernorm.weight", (4,), torch.bfloat16),
        ("model.layers.0.self_attn.q_proj.weight", (4, 4), torch.bfloat16),
        ("model.layers.0.self_attn.q_proj.bias", (4,), torch.bfloat16),
    ],
    "model-00002-of-00002.safetensors": [
        ("model.norm.weight", (4,), torch.bfloat16),
        ("lm_head.weight", (8, 4), torch.bfloat16),
        ("encoder.adapter.scale", (2,), torch.float32),
    ],
}


def sharded():
    g = torch.Generator().manual_seed(7)
    return {shard: {name: torch.randn(*shape, generator=g).to(dtype) for name, shape, dtype in spec}
            for shard, spec in SHARDS.items()}


SETS = {"all_dtypes": all_dtypes}


# ------------------------------------------------------------------------------------------ sidecars

def describe(name, t, offsets, extra=None):
    dtype = NAME_OF[t.dtype]
    d = {"dtype": dtype, "shape": list(t.shape), "data_offsets": offsets, "hex": tensor_bytes(t).hex()}
    if dtype in FLOATS:
        # float64 bit patterns of the values widened exactly (NaN payloads are not compared).
        d["f64_bits"] = ["%016x" % struct.unpack("<Q", struct.pack("<d", v))[0] for v in t.double().reshape(-1).tolist()]
    else:
        d["ints"] = [int(v) for v in t.reshape(-1).tolist()]
    if extra:
        d.update(extra)
    return d


def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=1, sort_keys=True, ensure_ascii=True)
        f.write("\n")


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def generate():
    assert sys.byteorder == "little"
    os.makedirs(OUT, exist_ok=True)

    tensors, metadata = all_dtypes()
    data = serialize(tensors, metadata)
    write_bytes(os.path.join(OUT, "all_dtypes.safetensors"), data)
    parsed_meta, parsed = parse(data)
    assert parsed_meta == metadata
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    order = [k for k in header if k != "__metadata__"]
    write_json(os.path.join(OUT, "all_dtypes.expected.json"), {
        "set": "all_dtypes",
        "file": "all_dtypes.safetensors",
        "header_length": n,
        "metadata": metadata,
        "order": order,
        "tensors": {k: describe(k, tensors[k], header[k]["data_offsets"]) for k in order},
    })

    folder = os.path.join(OUT, "sharded")
    os.makedirs(folder, exist_ok=True)
    weight_map, expected, total = {}, {}, 0
    for shard, ts in sharded().items():
        data = serialize(ts, {"format": "pt"})
        write_bytes(os.path.join(folder, shard), data)
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        for k, t in ts.items():
            weight_map[k] = shard
            total += len(tensor_bytes(t))
            expected[k] = describe(k, t, header[k]["data_offsets"], {"shard": shard})
    # transformers writes the index this way: indent=2, sorted keys, trailing newline.
    with open(os.path.join(folder, "model.safetensors.index.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n")
    write_json(os.path.join(folder, "expected.json"), {"total_size": total, "tensors": expected})
    print(f"wrote fixtures under {OUT}")


# ------------------------------------------------------------------------------------------ verify

def verify(path, expected_path):
    faults = []
    with open(path, "rb") as f:
        data = f.read()
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    try:
        metadata, tensors = parse(data)
    except Exception as e:  # noqa: BLE001 - any parse failure is the verdict
        print(f"FAIL: {path} does not parse as safetensors: {e}")
        return 1
    reference, ref_metadata = SETS[expected["set"]]()
    if metadata != ref_metadata:
        faults.append(f"metadata {metadata!r} != {ref_metadata!r}")
    if set(tensors) != set(reference):
        faults.append(f"tensor names differ: extra {sorted(set(tensors) - set(reference))}, "
                      f"missing {sorted(set(reference) - set(tensors))}")
    for name in sorted(set(tensors) & set(reference)):
        got, want = tensors[name], reference[name]
        if got.dtype != want.dtype or list(got.shape) != list(want.shape):
            faults.append(f"{name!r}: {got.dtype}{list(got.shape)} != {want.dtype}{list(want.shape)}")
        elif tensor_bytes(got) != tensor_bytes(want):
            faults.append(f"{name!r}: values differ from torch")
        elif tensor_bytes(got).hex() != expected["tensors"][name]["hex"]:
            faults.append(f"{name!r}: values differ from {expected_path}")
    if not faults and serialize(tensors, metadata) != data:
        faults.append("valid, but not the canonical layout the safetensors package writes")
    if faults:
        print(f"FAIL: {path}")
        for fault in faults:
            print("  " + fault)
        return 1
    print(f"OK: {path}: {len(tensors)} tensors match torch bit-exactly; canonical layout")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--verify":
        sys.exit(verify(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    generate()
