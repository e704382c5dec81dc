#!/usr/bin/python3
"""Writes the NumPy .npy/.npz fixtures that the C# NumPy reader/writer tests compare against.

Run with Debian's interpreter (it has numpy):  /usr/bin/python3 reference-data/make_numpy_fixtures.py

Output: reference-data/fixtures/numpy/
  *.npy, *.npz     arrays written by numpy itself (np.save, numpy.lib.format.write_array, np.savez,
                   np.savez_compressed) plus one .npz assembled here with zipfile (mixed stored/deflated members,
                   a member in a sub-folder and a non-.npy member that readers must skip)
  manifest.json    for every array: file, member (npz key or null), descr, our DType name, shape, fortran_order,
                   header version and raw_hex = the array's values as little-endian C-order bytes. The C# tests
                   compare what they read against raw_hex, so they never trust our own reader for expectations.

Determinism: fixed seed; np.save/write_array are byte-deterministic. np.savez/np.savez_compressed stamp each zip
member with the current local time, so while they run, zipfile's clock is pinned to 1980-01-01 00:00:00 (the
earliest DOS date) through a module-level shim; the members are still produced by numpy's own writer code.
Deflated bytes depend on the zlib build: re-running with another zlib may change savez_compressed.npz and
handmade.npz byte-wise but never the decoded values in manifest.json. Re-running here reproduces every file bit-identically.
"""
import io
import json
import os
import types
import zipfile

import numpy as np
from numpy.lib import format as npformat

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "numpy")
RNG = np.random.default_rng(20240611)

OUR_DTYPE = {"f4": "F32", "f8": "F64", "f2": "F16", "i8": "I64", "i4": "I32", "i2": "I16",
             "i1": "I8", "u1": "U8", "b1": "Bool"}


def values(code, shape):
    """Random values of numpy dtype `code` (e.g. 'f4'); floats get NaN/±inf/-0/subnormal/max mixed in."""
    n = int(np.prod(shape))
    if code[0] == "f":
        dt = np.dtype(code)
        a = (RNG.standard_normal(n) * 10).astype(dt)
        fi = np.finfo(dt)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0, fi.smallest_subnormal, fi.max, fi.min], dtype=dt)
        k = min(n, len(specials))
        a[:k] = specials[:k]
    elif code == "b1":
        a = RNG.random(n) < 0.5
    else:
        ii = np.iinfo(np.dtype(code))
        a = RNG.integers(ii.min, ii.max, size=n, endpoint=True, dtype=np.dtype(code))
        if n >= 2:
            a[0], a[1] = ii.min, ii.max
    return a.reshape(shape)


def raw_le_c(a):
    """The expected values: little-endian, C-order bytes (independent of how the file stores them)."""
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=True).tobytes(order="C")


manifest = []


def record(file, a, member=None, version=(1, 0)):
    code = a.dtype.str[1:]
    manifest.append({
        "file": file,
        "member": member,
        "descr": a.dtype.str,
        "dtype": OUR_DTYPE[code],
        "shape": list(a.shape),
        "fortran_order": bool(a.flags.f_contiguous and not a.flags.c_contiguous),
        "version": list(version),
        "raw_hex": raw_le_c(a).hex(),
    })


def save(file, a, version=None):
    path = os.path.join(OUT, file)
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            npformat.write_array(f, a, version=version)
    with open(path, "rb") as f:  # the version numpy actually wrote
        v = tuple(f.read(8)[6:8])
    record(file, a, version=v)


class _PinnedClock:
    """Stands in for the `time` module inside zipfile so that np.savez stamps members 1980-01-01 00:00:00."""

    def __enter__(self):
        self._saved = zipfile.time
        zipfile.time = types.SimpleNamespace(time=lambda: 0.0, localtime=lambda *_: (1980, 1, 1, 0, 0, 0, 1, 1, 0))
        return self

    def __exit__(self, *exc):
        zipfile.time = self._saved


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))

    # Every supported dtype, C order, both byte orders (one-byte types have no byte order: '|').
    for code in ["f4", "f8", "f2", "i8", "i4", "i2"]:
        a = values(code, (3, 4))
        save(f"c_{code}_le.npy", a.astype("<" + code))
        save(f"c_{code}_be.npy", a.astype(">" + code))
    for code in ["i1", "u1", "b1"]:
        save(f"c_{code}.npy", values(code, (3, 4)))

    # Fortran order: numpy writes fortran_order True and the data column-major.
    save("f_f4_le.npy", np.asfortranarray(values("f4", (2, 3, 4))))
    save("f_i2_be.npy", np.asfortranarray(values("i2", (3, 5)).astype(">i2")))
    save("f_u1.npy", np.asfortranarray(values("u1", (4, 2))))

    # 0-d scalar, empty array, 1-d.
    save("scalar_f8.npy", np.array(np.pi, dtype="<f8"))
    save("empty_f4_0x3.npy", np.zeros((0, 3), dtype="<f4"))
    save("vec_i8.npy", values("i8", (5,)))

    # Header versions 2.0 (u32 length) and 3.0 (u32 length, utf-8 header).
    save("v2_f4.npy", values("f4", (2, 3)), version=(2, 0))
    save("v3_i4.npy", np.asfortranarray(values("i4", (2, 3))), version=(3, 0))

    # .npz written by numpy itself: stored (np.savez) and deflated (np.savez_compressed).
    members = {
        "weight": values("f4", (3, 2)),
        "ids": values("i8", (4,)),
        "mask": values("b1", (2, 2)),
        "fortran": np.asfortranarray(values("f8", (2, 3))),
        "big_endian": values("i4", (3,)).astype(">i4"),
        "scalar": np.array(7, dtype="<i2"),
        "empty": np.zeros((0,), dtype="<f2"),
    }
    with _PinnedClock():
        np.savez(os.path.join(OUT, "savez.npz"), **members)
        np.savez_compressed(os.path.join(OUT, "savez_compressed.npz"), **members)
    for file in ("savez.npz", "savez_compressed.npz"):
        for key, a in members.items():
            record(file, a, member=key)

    # .npz assembled by hand: mixed compression, a member in a folder, and a non-array member to be skipped.
    hand = {"x": values("f2", (2, 2)), "nested/y": values("u1", (3,))}
    path = os.path.join(OUT, "handmade.npz")
    with zipfile.ZipFile(path, "w") as z:
        for (key, a), method in zip(hand.items(), [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]):
            buf = io.BytesIO()
            npformat.write_array(buf, a)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, buf.getvalue())
            record("handmade.npz", a, member=key)
        info = zipfile.ZipInfo("README.txt", date_time=(1980, 1, 1, 0, 0, 0))
        z.writestr(info, b"not an array\n")

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
