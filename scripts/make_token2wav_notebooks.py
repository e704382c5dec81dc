#!/usr/bin/env python3
"""Writes the speech-out notebooks notebooks/06-flow.ipynb, 07-vocoder.ipynb, 08-end-to-end.ipynb from their readable
sources in scripts/notebooks/nb06_flow.py, nb07_vocoder.py, nb08_end_to_end.py.

Same format as the stage notebooks 01–05 (scripts/make_notebooks.py): each source module defines CELLS, a list of
("md" | "code", text); the output is nbformat 4.5 with the .NET (C#) kernelspec, a stable id per cell
(<notebook prefix>-<two-digit index>) and no stored outputs, so a rerun reproduces the files byte for byte. The two
package cells are taken verbatim from 00-quickstart.ipynb (the in-process test runner recognises and skips them).

    /usr/bin/python3 scripts/make_token2wav_notebooks.py           # write notebooks/
    /usr/bin/python3 scripts/make_token2wav_notebooks.py --check   # exit 1 when a notebook differs from its source
"""
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = os.path.join(ROOT, "scripts", "notebooks")
OUT = os.path.join(ROOT, "notebooks")

NOTEBOOKS = [
    ("06-flow", "flow", "nb06_flow"),
    ("07-vocoder", "voc", "nb07_vocoder"),
    ("08-end-to-end", "e2e", "nb08_end_to_end"),
]

METADATA = {
    "kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"},
    "language_info": {"file_extension": ".cs", "mimetype": "text/x-csharp", "name": "C#", "pygments_lexer": "csharp", "version": "13.0"},
}


def package_cells():
    with open(os.path.join(OUT, "00-quickstart.ipynb"), encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"][:2]
    return ["".join(c["source"]) for c in cells]


def lines(text):
    text = text.strip("\n")
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def load(module):
    spec = importlib.util.spec_from_file_location(module, os.path.join(SOURCES, module + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CELLS


def build(prefix, cells, package):
    out = []
    for i, (kind, text) in enumerate([("code", c) for c in package] + list(cells)):
        cell = {"cell_type": "markdown" if kind == "md" else "code", "id": f"{prefix}-{i:02d}", "metadata": {}, "source": lines(text)}
        if kind == "code":
            cell["execution_count"] = None
            cell["metadata"] = {"dotnet_interactive": {"language": "csharp"}, "polyglot_notebook": {"kernelName": "csharp"}}
            cell["outputs"] = []
        elif kind != "md":
            raise ValueError(f"cell {i} of {prefix}: unknown kind {kind!r}")
        out.append(cell)
    nb = {"cells": out, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    package = package_cells()
    stale = []
    for name, prefix, module in NOTEBOOKS:
        text = build(prefix, load(module), package)
        path = os.path.join(OUT, name + ".ipynb")
        if check:
            if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print("wrote", os.path.relpath(path, ROOT))
    if stale:
        print("out of date (run scripts/make_token2wav_notebooks.py):", *stale, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
