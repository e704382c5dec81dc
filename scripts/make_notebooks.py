#!/usr/bin/env python3
"""Writes the stage notebooks notebooks/01-*.ipynb … 05-*.ipynb from their readable sources in scripts/notebooks/*.py.

Each source module defines CELLS, a list of ("md" | "code", text). The output is nbformat 4.5 with the .NET (C#)
kernelspec, a stable id per cell (<notebook prefix>-<two-digit index>) and no stored outputs, so a rerun reproduces the
files byte for byte and a diff shows only what changed in the source.

    /usr/bin/python3 scripts/make_notebooks.py           # write notebooks/
    /usr/bin/python3 scripts/make_notebooks.py --check   # exit 1 when a notebook differs from its source
"""
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = os.path.join(ROOT, "scripts", "notebooks")
OUT = os.path.join(ROOT, "notebooks")

# The two cells every notebook starts with, identical to 00-quickstart's: the local feed that scripts/pack_interactive.sh
# fills (#i takes an absolute path, so the directive is sent with the path filled in), then the kernel extension, which
# brings the core library and registers the formatters. The in-process test host skips both and loads the extension itself.
PACKAGE_CELLS = [
    "// The local feed that `bash scripts/pack_interactive.sh` fills, relative to this notebook (Jupyter starts the kernel in notebooks/).\n"
    "// #i takes absolute paths only, so the directive is sent with the path filled in.\n"
    "await Microsoft.DotNet.Interactive.Kernel.Root.SendAsync(new Microsoft.DotNet.Interactive.Commands.SubmitCode(\n"
    '    $"#i \\"nuget:{System.IO.Path.GetFullPath("../artifacts/packages")}\\"", "csharp"));',
    '#r "nuget: StepAudio2.Lab.Interactive, 0.1.0"',
]

NOTEBOOKS = [
    ("01-mel-frontend", "mel", "nb01_mel_frontend"),
    ("02-audio-encoder", "enc", "nb02_audio_encoder"),
    ("03-adaptor", "adp", "nb03_adaptor"),
    ("04-llm", "llm", "nb04_llm"),
    ("05-parity", "par", "nb05_parity"),
    ("06-flow", "flow", "nb06_flow"),
    ("07-vocoder", "voc", "nb07_vocoder"),
    ("08-end-to-end", "e2e", "nb08_end_to_end"),
    ("09-think-and-tools", "think", "nb09_think_and_tools"),
]

METADATA = {
    "kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"},
    "language_info": {"file_extension": ".cs", "mimetype": "text/x-csharp", "name": "C#", "pygments_lexer": "csharp", "version": "13.0"},
}


def lines(text):
    text = text.strip("\n")
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def load(module):
    spec = importlib.util.spec_from_file_location(module, os.path.join(SOURCES, module + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CELLS


def build(prefix, cells):
    out = []
    for i, (kind, text) in enumerate([("code", c) for c in PACKAGE_CELLS] + list(cells)):
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
    stale = []
    for name, prefix, module in NOTEBOOKS:
        text = build(prefix, load(module))
        path = os.path.join(OUT, name + ".ipynb")
        if check:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    stale.append(path)
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print("wrote", os.path.relpath(path, ROOT))
    quick = os.path.join(OUT, "00-quickstart.ipynb")
    if os.path.exists(quick):
        with open(quick, encoding="utf-8") as f:
            firsts = ["".join(c["source"]) for c in json.load(f)["cells"] if c["cell_type"] == "code"][:2]
        if firsts != PACKAGE_CELLS:
            stale.append(quick + " (its package cells differ from PACKAGE_CELLS)")
    if stale:
        print("out of date (run scripts/make_notebooks.py):", *stale, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
