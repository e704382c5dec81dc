#!/usr/bin/env python3
"""Prints test.sh's closing line, "N passed, N failed[, N skipped]", summed over every test assembly's trx file.

Usage: test_summary.py RESULTS_DIR EXPECTED_ASSEMBLIES [RESULTS_DIR EXPECTED_ASSEMBLIES ...]
Each trx (written with LogFilePrefix, so assemblies never overwrite each other) is renamed to <assembly>.trx within its
directory. Exit 1 when a directory's trx files do not cover its EXPECTED_ASSEMBLIES assemblies (one crashed or never ran),
so a missing result never reads as a pass. Several directories (test.sh's second run with AVX2/AVX-512 disabled writes
its own) are summed into the one line.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

NS = "{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}"


def main() -> int:
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    missing = []
    for results_dir, expected in zip(args[0::2], args[1::2]):
        assemblies = summarize(results_dir, totals)
        if assemblies is None:
            return 1
        if len(set(assemblies)) < int(expected):
            missing.append(f"only {len(set(assemblies))} of {expected} test assemblies wrote results in {results_dir}")
    line = f"{totals['passed']} passed, {totals['failed']} failed"
    if totals["skipped"]:
        line += f", {totals['skipped']} skipped"
    print(line)
    for m in missing:
        print(m, file=sys.stderr)
    return 1 if missing else 0


def summarize(results_dir: str, totals: dict) -> list | None:
    """Adds one directory's trx counters to totals; returns its assembly names (None when a trx is malformed)."""
    assemblies = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.trx"))):
        root = ET.parse(path).getroot()
        counters = root.find(f"{NS}ResultSummary/{NS}Counters")
        if counters is None:
            print(f"{path}: no ResultSummary/Counters", file=sys.stderr)
            return None
        c = {k: int(v) for k, v in counters.attrib.items() if v.isdigit()}
        totals["passed"] += c.get("passed", 0)
        totals["failed"] += c.get("failed", 0) + c.get("error", 0) + c.get("timeout", 0) + c.get("aborted", 0)
        totals["skipped"] += c.get("notExecuted", 0)
        method = root.find(f"{NS}TestDefinitions/{NS}UnitTest/{NS}TestMethod")
        name = os.path.splitext(os.path.basename(method.get("codeBase")))[0] if method is not None else os.path.basename(path)[:-4]
        assemblies.append(name)
        target = os.path.join(results_dir, name + ".trx")
        if path != target:
            os.replace(path, target)
        print(f"  {name}: {c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('notExecuted', 0)} skipped "
              f"({c.get('total', 0)} in all) → {target}", file=sys.stderr)
    return assemblies


if __name__ == "__main__":
    sys.exit(main())
