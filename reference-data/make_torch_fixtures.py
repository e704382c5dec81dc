#!/usr/bin/python3
"""Writes the PyTorch zip-checkpoint fixtures read by tests/StepAudio2.Lab.Tests/Torch/.

Run with Debian's python3-torch (1.13): /usr/bin/python3 reference-data/make_torch_fixtures.py
Deterministic: fixed seed, fixed zip timestamps; re-running reproduces every file bit-identically.

Good checkpoints (written by torch.save, zip format):
  state_dict.pt   real module state_dict (with _metadata, weight_g/weight_v) plus hand-made tensors of every dtype,
                  a transposed view, an offset view, tensors sharing one storage, a 0-d scalar, parametrization keys.
  nested.pt       {'generator': {...}, 'config': {...}, ints/floats/strings} with plain (not ordered) dicts.
  Each comes with <name>.expected.json (order, dtype, shape, stride, storage offset, storage group, where its
  expected bytes are) and <name>.expected.bin (raw little-endian bytes of t.contiguous(); bf16 as its bit pattern).
  state_dict_proto4.pt  the same state dict saved with pickle_protocol=4 (STACK_GLOBAL, MEMOIZE, FRAME)
Rewritten copies of state_dict.pt (same pickle and storages, different zip layout):
  state_dict_deflated.pt  members deflated (reader must decompress, cannot map)
  state_dict_unaligned.pt members stored, but without torch's 64-byte alignment padding
Bad inputs:
  evil_os_system.pt, evil_eval.pt, evil_stack_global.pt, evil_module.pt   hostile or non-allow-listed globals
  bad_numel.pt (storage member shorter than its declared numel), missing_storage.pt (data/<key> absent),
  truncated.pt (state_dict.pt cut in half), legacy.pt (pre-1.6 non-zip format), big_endian.pt (byteorder 'big').
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "torch")
# Side-effect marker: the hostile pickles would create this file if anything ever executed them.
PWNED_MARKER = "/tmp/steplab-torch-fixture-pwned"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

DTYPE_NAMES = {
    torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8", torch.bool: "bool",
}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bf16: write its bit pattern
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def flatten(obj, prefix=""):
    """(name, value) pairs in insertion order, nested dicts joined with '.', as the C# reader flattens them."""
    for k, v in obj.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            yield from flatten(v, name)
        else:
            yield name, v


def write_expected(stem, obj):
    tensors, metadata, blob = [], {}, bytearray()
    groups = {}
    for name, v in flatten(obj):
        if isinstance(v, torch.Tensor):
            data = raw_bytes(v)
            ptr = v.storage().data_ptr()
            group = groups.setdefault(ptr, len(groups))
            tensors.append({
                "name": name, "dtype": DTYPE_NAMES[v.dtype], "shape": list(v.shape), "stride": list(v.stride()),
                "storage_offset": v.storage_offset(), "storage_numel": v.storage().size(), "storage_group": group,
                "contiguous": v.is_contiguous(), "byte_offset": len(blob), "byte_length": len(data),
            })
            blob += data
        else:
            metadata[name] = v
    with open(os.path.join(OUT, stem + ".expected.json"), "w") as f:
        json.dump({"tensors": tensors, "metadata": metadata}, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(OUT, stem + ".expected.bin"), "wb") as f:
        f.write(bytes(blob))


def make_state_dict():
    torch.manual_seed(1234)
    # A real module's state_dict: OrderedDict with a _metadata attribute (pickled through BUILD) and weight_g/weight_v.
    model = torch.nn.Sequential(collections.OrderedDict(
        conv=torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 4, 3)),
        norm=torch.nn.LayerNorm(4),
    ))
    sd = model.state_dict()
    sd["f32"] = torch.randn(3, 4)
    sd["bf16"] = torch.randn(5).to(torch.bfloat16)
    sd["f16"] = torch.tensor([[1.0, -0.0], [float("inf"), 65504.0]], dtype=torch.float16)
    sd["i64"] = torch.tensor([0, -1, 2**40 + 3, -(2**62)], dtype=torch.int64)
    sd["mask"] = torch.tensor([True, False, True])
    w = torch.randn(3, 5)
    sd["w_t"] = w.t()  # non-contiguous view; the whole 15-element storage is saved
    base = torch.arange(10, dtype=torch.float32) * 0.5
    sd["window"] = base[2:5]  # storage_offset 2
    a = torch.randn(6)
    sd["shared.a"] = a
    sd["shared.a_2x3"] = a.view(2, 3)
    sd["shared.a_tail"] = a[3:]
    sd["scalar"] = torch.tensor(3.25)
    sd["f64"] = torch.tensor([1.0 / 3.0, -2.5e-300], dtype=torch.float64)
    sd["i32"] = torch.tensor([7, -8], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["empty"] = torch.zeros(0, 3)
    sd["conv.parametrizations.weight.original0"] = torch.randn(4, 1, 1)
    sd["conv.parametrizations.weight.original1"] = torch.randn(4, 2, 3)
    return sd


def make_nested():
    torch.manual_seed(99)
    generator = {
        "conv_pre.weight": torch.randn(4, 2, 3),
        "conv_pre.bias": torch.randn(4),
        "ups": {"0": {"weight_g": torch.randn(4, 1, 1), "weight_v": torch.randn(4, 2, 2)}},
    }
    return {
        "generator": generator,
        "step": 123456,
        "config": {"sampling_rate": 24000, "name": "hift", "lr": 0.5, "resume": False},
        "head": torch.arange(4, dtype=torch.int64),
    }


def rewrite_zip(src, dst, transform=None, compression=zipfile.ZIP_STORED, drop=()):
    """Copies src's members into a new zip written by Python's zipfile (no 64-byte alignment), optionally altered."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if transform is not None:
                data = transform(info.filename, data)
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            zi.compress_type = compression
            zout.writestr(zi, data)


def write_pickle_zip(path, pickle_bytes, extra=()):
    """A zip laid out like torch.save's (archive/data.pkl, archive/version), with a hand-made data.pkl."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in (("archive/data.pkl", pickle_bytes), ("archive/version", b"3\n"), *extra):
            z.writestr(zipfile.ZipInfo(name, date_time=ZIP_TIME), data)


def save_legacy(obj, path):
    """torch.save in the pre-1.6 format. Its storage keys are str(storage._cdata), a memory address; shadowing
    str() inside torch.serialization while saving turns them into "0", "1", ... so the file is reproducible."""
    import builtins
    import torch.serialization as ser
    keys = {}

    class _IsStr(type):
        def __instancecheck__(cls, obj):  # isinstance(x, str) inside torch.serialization keeps working
            return isinstance(obj, builtins.str)

    class stable_str(builtins.str, metaclass=_IsStr):
        def __new__(cls, x=""):
            if isinstance(x, int) and not isinstance(x, bool) and x > 1 << 20:
                return keys.setdefault(x, builtins.str(len(keys)))
            return builtins.str(x)

    ser.str = stable_str
    try:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    finally:
        del ser.str


class _StackGlobalSystem:
    """Pickles as os.system(...) through protocol 4's STACK_GLOBAL ('posix' 'system' on Linux)."""
    def __reduce__(self):
        return (os.system, ("touch " + PWNED_MARKER,))


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda name: os.path.join(OUT, name)

    sd = make_state_dict()
    torch.save(sd, p("state_dict.pt"))
    write_expected("state_dict", sd)
    # Same content through pickle protocol 4: globals become STACK_GLOBAL with memoized module strings, plus FRAMEs.
    torch.save(sd, p("state_dict_proto4.pt"), pickle_protocol=4)

    nested = make_nested()
    torch.save(nested, p("nested.pt"))
    write_expected("nested", nested)

    rewrite_zip(p("state_dict.pt"), p("state_dict_deflated.pt"), compression=zipfile.ZIP_DEFLATED)
    rewrite_zip(p("state_dict.pt"), p("state_dict_unaligned.pt"))

    # Hostile pickles. Each would run a shell command / construct an arbitrary object under pickle.load.
    cmd = ("touch " + PWNED_MARKER).encode()
    write_pickle_zip(p("evil_os_system.pt"),
                     b"\x80\x02cos\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd + b"q\x01\x85q\x02Rq\x03.")
    code = ("open('" + PWNED_MARKER + "', 'w')").encode()
    write_pickle_zip(p("evil_eval.pt"),
                     b"\x80\x02cbuiltins\neval\nq\x00X" + len(code).to_bytes(4, "little") + code + b"q\x01\x85q\x02Rq\x03.")
    write_pickle_zip(p("evil_stack_global.pt"), pickle.dumps(_StackGlobalSystem(), protocol=4))
    torch.manual_seed(7)
    torch.save(torch.nn.Linear(2, 3), p("evil_module.pt"))  # a whole nn.Module, not a state_dict

    # Storage 0 of state_dict.pt's first tensor cut short: declared numel no longer fits the member.
    with zipfile.ZipFile(p("state_dict.pt")) as z:
        first_storage = next(n for n in z.namelist() if n.endswith("/data/0"))
        first_len = len(z.read(first_storage))
    rewrite_zip(p("state_dict.pt"), p("bad_numel.pt"),
                transform=lambda name, data: data[: first_len // 2] if name == first_storage else data)
    rewrite_zip(p("state_dict.pt"), p("missing_storage.pt"), drop=(first_storage.replace("/data/0", "/data/1"),))

    with open(p("state_dict.pt"), "rb") as f:
        whole = f.read()
    with open(p("truncated.pt"), "wb") as f:
        f.write(whole[: len(whole) // 2])

    save_legacy(collections.OrderedDict(x=torch.arange(3, dtype=torch.float32)), p("legacy.pt"))

    rewrite_zip(p("state_dict.pt"), p("big_endian.pt"))
    with zipfile.ZipFile(p("big_endian.pt"), "a") as z:
        archive = z.namelist()[0].split("/")[0]
        z.writestr(zipfile.ZipInfo(archive + "/byteorder", date_time=ZIP_TIME), b"big")

    if os.path.exists(PWNED_MARKER):
        sys.exit(f"{PWNED_MARKER} exists: remove it (the C# tests assert it is never created)")


if __name__ == "__main__":
    main()
