"""Unicode Character Database facts needed by the C# NFC normaliser, from this Python's unicodedata.

Called by make_tokenizer_fixtures.js (run with /usr/bin/python3). Prints one JSON object:
  version: the UCD version of this Python's unicodedata;
  ccc: [[cp, ccc], ...] for every code point whose canonical combining class is not 0;
  decomp: [[cp, [a, b?]], ...] single-step canonical decompositions (Hangul syllables excluded: algorithmic);
  compose: [[a, b, cp], ...] primary composites (canonical pairs that NFC recomposes);
  probes: [[cp, probe, nfd(probe)], ...] strings that reveal whether another normaliser knows cp's ccc/decomposition.
Deterministic: iterates code points in order.
"""
import json
import sys
import unicodedata as ud

out = {"version": ud.unidata_version, "ccc": [], "decomp": [], "compose": [], "probes": []}
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:
        continue
    ch = chr(cp)
    ccc = ud.combining(ch)
    d = ud.decomposition(ch)
    canon = d != "" and not d.startswith("<")
    if ccc:
        out["ccc"].append([cp, ccc])
    if canon:
        parts = [int(x, 16) for x in d.split()]
        out["decomp"].append([cp, parts])
        if len(parts) == 2 and ud.normalize("NFC", chr(parts[0]) + chr(parts[1])) == ch:
            out["compose"].append([parts[0], parts[1], cp])
    if ccc or canon:
        # U+0345 has ccc 240, the highest but one (232..234 < 240): a mark that the other normaliser knows with
        # ccc < 240 is moved before it by canonical ordering; a decomposable code point is decomposed.
        probe = ("\u0345" + ch) if 0 < ccc < 240 else ch
        out["probes"].append([cp, probe, ud.normalize("NFD", probe)])
json.dump(out, sys.stdout, ensure_ascii=True, separators=(",", ":"))
