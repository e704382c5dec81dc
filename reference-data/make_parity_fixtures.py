#!/usr/bin/env python3
"""Deterministic fixtures for the C# parity toolkit: tensor pairs plus the comparison metrics NumPy computes for them.

The C# TensorComparer must agree with NumPy's definitions, computed here independently in float64:
  * out_of_tolerance = count(~numpy.isclose(a, b, rtol, atol, equal_nan=True))   (b is the reference)
  * max_abs_diff / max_abs_index = max and first argmax of |a - b| over positions where both are finite
  * mean_abs_diff over the same positions; rel_l2 = ||a - b|| / ||b||; cosine = a.b / (||a|| ||b||)
  * nan/inf counts per side, first mismatching index (row-major)
bf16 candidates are rounded by torch (round-to-nearest-even), so the C# side reads torch's bits.

Files (reference-data/fixtures/parity/): cases.json, and per case <name>.candidate.bin / <name>.reference.bin holding the
raw little-endian C-order elements (bf16 as uint16 bit patterns, bool as one byte).

Usage: /usr/bin/python3 reference-data/make_parity_fixtures.py   (bit-identical output on every run)
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "parity")


def raw(x, dtype):
    """Bytes of x as the named dtype, and x as the float64/int64 values the comparison sees."""
    if dtype == "bf16":
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(torch.bfloat16)
        bits = t.view(torch.int16).numpy().view(np.uint16)
        return bits.tobytes(), t.to(torch.float64).numpy()
    np_dtype = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64, "i32": np.int32, "bool": np.bool_}[dtype]
    y = np.ascontiguousarray(x, dtype=np_dtype)
    return y.astype(y.dtype.newbyteorder("<")).tobytes(), y


def metrics(a, b, rtol, atol, integer):
    if integer:
        a64, b64 = a.astype(np.int64).ravel(), b.astype(np.int64).ravel()
        bad = a64 != b64
        af, bf = a64.astype(np.float64), b64.astype(np.float64)
    else:
        af, bf = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        bad = ~np.isclose(af, bf, rtol=rtol, atol=atol, equal_nan=True)
    finite = np.isfinite(af) & np.isfinite(bf)
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are infinite; masked out below
        d = np.abs(af - bf)
    d_masked = np.where(finite, d, -1.0)
    fa, fb = af[finite], bf[finite]
    na, nb = float(np.sqrt(np.sum(fa * fa))), float(np.sqrt(np.sum(fb * fb)))
    nd = float(np.sqrt(np.sum((fa - fb) ** 2)))
    if nb > 0:
        rel = nd / nb
    else:
        rel = 0.0 if nd == 0 else float("inf")
    if na == 0 and nb == 0:
        cos = 1.0
    elif na == 0 or nb == 0:
        cos = 0.0
    else:
        cos = float(np.dot(fa, fb) / (na * nb))
    shape = a.shape
    first = int(np.argmax(bad)) if bad.any() else None
    imax = int(np.argmax(d_masked)) if finite.any() else None
    return {
        "element_count": int(af.size),
        "out_of_tolerance": int(bad.sum()),
        "first_mismatch_index": [int(i) for i in np.unravel_index(first, shape)] if first is not None else None,
        "max_abs_diff": float(d[finite].max()) if finite.any() else 0.0,
        "max_abs_index": [int(i) for i in np.unravel_index(imax, shape)] if imax is not None else None,
        "mean_abs_diff": float(d[finite].mean()) if finite.any() else 0.0,
        "rel_l2": rel,
        "cosine": cos,
        "nan_candidate": int(np.isnan(af).sum()),
        "nan_reference": int(np.isnan(bf).sum()),
        "inf_candidate": int(np.isinf(af).sum()),
        "inf_reference": int(np.isinf(bf).sum()),
        "allclose": bool(not bad.any()),
    }


def cases():
    rng = np.random.default_rng(20240611)

    b = rng.standard_normal((3, 5, 7)).astype(np.float32)
    a = (b + rng.standard_normal(b.shape).astype(np.float32) * np.float32(1e-3)).astype(np.float32)
    yield "noise_f32", a, "f32", b, "f32", 1e-3, 1e-4

    b = rng.standard_normal((4, 6)).astype(np.float32)
    a = b.copy()
    a[0, 1] = b[0, 1] = np.nan          # NaN on both sides: equal
    a[1, 2] = np.nan                    # NaN in the candidate only
    a[2, 3] = b[2, 3] = np.inf          # matching infinities
    a[3, 0], b[3, 0] = np.inf, -np.inf  # opposite infinities
    a[3, 5] += np.float32(0.25)
    yield "nan_inf", a, "f32", b, "f32", 1e-5, 1e-6

    b = rng.standard_normal((8, 16)).astype(np.float32) * np.float32(3)
    yield "bf16_vs_f32", b, "bf16", b, "f32", 1.6e-2, 1e-3

    b = rng.standard_normal((2, 3, 4)).astype(np.float64)
    a = b.astype(np.float16)
    yield "f16_vs_f64", a, "f16", b, "f64", 1e-3, 1e-4

    b = rng.integers(0, 151_000, size=(1, 32), dtype=np.int64)
    a = b.copy()
    a[0, [4, 9, 30]] += np.array([1, -7, 1000])
    yield "ids_i32_vs_i64", a.astype(np.int32), "i32", b, "i64", 0.0, 0.0

    b = rng.standard_normal((5, 9)).astype(np.float32)
    a = (b * np.float32(1.0005)).astype(np.float32)
    yield "scaled_loose", a, "f32", b, "f32", 1e-4, 1e-6


def main():
    os.makedirs(OUT, exist_ok=True)
    index = []
    for name, a, adt, b, bdt, rtol, atol in cases():
        abytes, avals = raw(a, adt)
        bbytes, bvals = raw(b, bdt)
        with open(os.path.join(OUT, name + ".candidate.bin"), "wb") as f:
            f.write(abytes)
        with open(os.path.join(OUT, name + ".reference.bin"), "wb") as f:
            f.write(bbytes)
        integer = adt in ("i32", "i64", "bool") and bdt in ("i32", "i64", "bool")
        index.append({
            "name": name,
            "candidate": {"file": name + ".candidate.bin", "dtype": adt, "shape": list(a.shape)},
            "reference": {"file": name + ".reference.bin", "dtype": bdt, "shape": list(b.shape)},
            "rtol": rtol,
            "atol": atol,
            "expected": metrics(avals, bvals, rtol, atol, integer),
        })
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        # allow_nan is only needed for inf rel-L2, which these cases avoid; keep the file strict JSON.
        json.dump(index, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
