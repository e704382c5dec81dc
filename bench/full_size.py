#!/usr/bin/python3
"""Helpers of bench/run_quant_full.sh (full-size bf16 / int8 / int4 checkpoints side by side).

  bytes DIR            bytes one decode step streams from the checkpoint: every tensor under model.layers.*, model.norm
                       and lm_head.* (packed codes + scales + biases for quantized ones) — read from the safetensors
                       headers, so it is what the files hold, not a formula. One embedding row is added (the lookup).
  evict DIR            drops DIR's safetensors pages from the page cache (posix_fadvise DONTNEED: only these files,
                       the other engineers' caches stay), so the next run starts cold.
  resident DIR         fraction of DIR's safetensors bytes now in the page cache (mincore over a read-only mapping).
  time FILE            /usr/bin/time -v output → JSON (max RSS, major/minor faults, file-system input bytes, wall).
  report OUT ARGS…     merges the per-run JSON files into OUT (see run_quant_full.sh).
"""
import ctypes
import ctypes.util
import glob
import json
import mmap
import os
import re
import struct
import sys

LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
PAGE = os.sysconf("SC_PAGE_SIZE")


def shards(d):
    files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
    if not files:
        sys.exit(f"{d}: no *.safetensors files")
    return files


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > 100 << 20:
            sys.exit(f"{path}: header length {n} at offset 0 is implausible")
        return json.loads(f.read(n))


def decode_bytes(d):
    config = json.load(open(os.path.join(d, "config.json")))
    hidden = config["text_config"]["hidden_size"] if "text_config" in config else config["hidden_size"]
    per_token, embed_row, total, by_kind = 0, 0, 0, {}
    for s in shards(d):
        for name, info in header(s).items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            total += b - a
            if name.startswith("model.layers.") or name.startswith("model.norm.") or name.startswith("lm_head."):
                per_token += b - a
                kind = "lm_head" if name.startswith("lm_head.") else "decoder_layers"
                by_kind[kind] = by_kind.get(kind, 0) + b - a
            elif name.startswith("model.embed_tokens."):
                rows = info["shape"][0]
                embed_row += (b - a) // rows  # one row of codes / scales / biases per looked-up token
    return {"decode_bytes_per_token": per_token + embed_row, "decoder_layer_bytes": by_kind.get("decoder_layers", 0),
            "lm_head_bytes": by_kind.get("lm_head", 0), "checkpoint_bytes": total, "hidden": hidden}


def evict(d):
    for s in shards(d):
        fd = os.open(s, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident(d):
    # mincore over a read-only shared mapping of each shard (libc mmap: Python's mmap hides the address)
    LIBC.mmap.restype = ctypes.c_void_p
    LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    have = total = 0
    for s in shards(d):
        size = os.path.getsize(s)
        fd = os.open(s, os.O_RDONLY)
        try:
            addr = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                sys.exit(f"{s}: mmap failed (errno {ctypes.get_errno()})")
            try:
                vec = (ctypes.c_ubyte * ((size + PAGE - 1) // PAGE))()
                if LIBC.mincore(addr, size, vec) != 0:
                    sys.exit(f"{s}: mincore failed (errno {ctypes.get_errno()})")
                have += sum(v & 1 for v in vec) * PAGE
            finally:
                LIBC.munmap(addr, size)
        finally:
            os.close(fd)
        total += size
    have = min(have, total)
    return {"resident_bytes": have, "file_bytes": total, "resident_fraction": round(have / total, 4)}


def parse_time(path):
    text = open(path).read()

    def field(label, cast=int):
        m = re.search(re.escape(label) + r":\s*(.+)", text)
        return cast(m.group(1).strip()) if m else None

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)", str)
    secs = None
    if wall:
        parts = [float(p) for p in wall.split(":")]
        secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"max_rss_bytes": (field("Maximum resident set size (kbytes)") or 0) * 1024,
            "major_faults": field("Major (requiring I/O) page faults"), "minor_faults": field("Minor (reclaiming a frame) page faults"),
            "fs_input_bytes": (field("File system inputs") or 0) * 512, "wall_s": secs,
            "user_s": field("User time (seconds)", float), "system_s": field("System time (seconds)", float),
            "exit_status": field("Exit status")}


def report(out, tmp, d, formats, max_tokens, threads, wall, encoder):
    def load(name):
        return json.load(open(os.path.join(tmp, name)))

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    doc = {"benchmark": "full-size decode, bf16 / int8 / int4 side by side (bench/run_quant_full.sh)",
           "weights": "random, full Step-Audio 2 mini shapes (real config.json); int8/int4 by `steplab quantize --recipe "
                      "decoder-head8` (decoder linears at the given bits, embed_tokens and lm_head at 8 bits, group 64)",
           "cpu": cpu, "threads": int(threads), "max_new_tokens": int(max_tokens), "wall_s": int(wall),
           "mem_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
           "note": "shared 2-core machine with other engineers' builds: compare ratios within this run only; every run "
                   "records the load average before and after it",
           "formats": {}}
    config = json.load(open(os.path.join(d, formats.split()[0], "config.json")))
    text = config.get("text_config", config)
    layers, kv_heads = text["num_hidden_layers"], text["num_key_value_heads"]
    head_dim = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    for fmt in formats.split():
        b = load(f"{fmt}.bytes")
        streams = [load(f"{fmt}.stream-before")["stream_read_gbps"], load(f"{fmt}.stream-after")["stream_read_gbps"]]
        stream = sum(streams) / 2
        cold, warm, batch = (load(f"{fmt}-{k}.run.json") for k in ("cold", "warm", "batch4"))
        c = warm["cli"]
        # the f32 KV cache read per step, at the mean context of the decode (prompt + half the new tokens)
        context = c["prompt_tokens"] + len(c["generated_ids"]) / 2
        kv = layers * 2 * kv_heads * head_dim * 4 * context
        per_token = b["decode_bytes_per_token"] + kv
        bound = stream * 1e9 / per_token

        def summary(r):
            t, cl = r["time"], r["cli"]
            return {"decode_tokens_per_s": cl.get("decode_tokens_per_s", cl.get("aggregate_decode_tokens_per_s")),
                    "load_s": cl["load_s"], "encoder_s": cl.get("encoder_s"), "prefill_s": cl.get("prefill_s"),
                    "decode_s": cl["decode_s"], "prompt_tokens": cl.get("prompt_tokens"),
                    "generated_tokens": len(cl["generated_ids"]) if "generated_ids" in cl else None,
                    "stop_reason": cl.get("stop_reason"), "peak_rss_bytes": cl["peak_rss_bytes"],
                    "time_max_rss_bytes": t["max_rss_bytes"], "major_faults": t["major_faults"], "minor_faults": t["minor_faults"],
                    "read_from_disk_bytes": t["fs_input_bytes"], "wall_s": t["wall_s"], "user_s": t["user_s"], "system_s": t["system_s"],
                    "checkpoint_resident_after": r["resident_after"]["resident_fraction"],
                    "mem_available_before_bytes": r["meminfo_before"].get("MemAvailable_bytes"),
                    "loadavg_before": r["loadavg_before"], "loadavg_after": r["loadavg_after"]}

        bs = batch["cli"]
        batch_tokens = sum(len(x["generated_ids"]) - 1 for x in bs["batch"])
        entry = {"checkpoint_bytes": b["checkpoint_bytes"], "decode_weight_bytes_per_token": b["decode_bytes_per_token"],
                 "decoder_layer_bytes": b["decoder_layer_bytes"], "lm_head_bytes": b["lm_head_bytes"],
                 "kv_cache_bytes_per_token": int(kv), "bytes_per_token": int(per_token),
                 "stream_read_gbps": round(stream, 2), "stream_read_gbps_before_after": streams,
                 "bandwidth_bound_tokens_per_s": round(bound, 3),
                 "decode_tokens_per_s": round(c["decode_tokens_per_s"], 3),
                 "fraction_of_bound": round(c["decode_tokens_per_s"] / bound, 3),
                 "effective_gbps": round(c["decode_tokens_per_s"] * per_token / 1e9, 2),
                 "cold": summary(cold), "warm": summary(warm),
                 "batch4": dict(summary(batch), clips=[os.path.basename(x["audio"]) for x in bs["batch"]],
                                stop_reasons=[x["stop_reason"] for x in bs["batch"]], generated_tokens=batch_tokens,
                                aggregate_decode_tokens_per_s=round(bs["aggregate_decode_tokens_per_s"], 3)),
                 "batch4_vs_one": round(bs["aggregate_decode_tokens_per_s"] / c["decode_tokens_per_s"], 2)}
        if os.path.exists(os.path.join(d, f"quantize-{fmt}.json")):
            entry["quantize"] = json.load(open(os.path.join(d, f"quantize-{fmt}.json")))
        doc["formats"][fmt] = entry
    f = doc["formats"]
    targets = {}
    for fmt, e in f.items():
        targets[f"{fmt}_decode_ge_90pct_of_bound"] = {"value": e["fraction_of_bound"], "target": 0.9, "met": e["fraction_of_bound"] >= 0.9}
        targets[f"{fmt}_batch4_ge_2.5x_one"] = {"value": e["batch4_vs_one"], "target": 2.5, "met": e["batch4_vs_one"] >= 2.5}
    if "bf16" in f:
        for fmt, want in (("int8", 1.8), ("int4", 3.0)):
            if fmt in f:
                v = round(f[fmt]["decode_tokens_per_s"] / f["bf16"]["decode_tokens_per_s"], 2)
                f[fmt]["speedup_vs_bf16"] = v
                targets[f"{fmt}_speedup_vs_bf16"] = {"value": v, "target": want, "met": v >= want}
    for fmt, limit in (("int4", 6e9), ("int8", 10e9)):
        if fmt in f:
            v = max(f[fmt]["warm"]["peak_rss_bytes"], f[fmt]["cold"]["peak_rss_bytes"])
            targets[f"{fmt}_peak_rss_le_{int(limit / 1e9)}gb"] = {"value": v, "target": int(limit), "met": v <= limit}
    if encoder == "1":
        enc = next(e for e in load("encoder.json")["entries"] if e["name"] == "encoder_full")
        doc["encoder_full"] = enc
        targets["encoder_25s_le_15s"] = {"value": round(enc["ours_ms"] / 1000, 2), "target": 15.0, "met": enc["ours_ms"] <= 15000}
        ours = load("gemm-ours.json")
        torch_runs = [load(f"gemm-torch-{i}.json") for i in (1, 2)]
        rows = []
        for e in ours["entries"]:
            t = [next(x for x in tr["entries"] if x["name"] == e["name"]) for tr in torch_runs]
            torch_ms = sum(x["torch_ms"] for x in t) / len(t)
            torch_cpu = sum(x["torch_cpu_ms"] for x in t) / len(t)
            rows.append({"name": e["name"], "shape": e["shape"], "ours_ms": e["ours_ms"], "ours_cpu_ms": e["ours_cpu_ms"],
                         "ours_gflops": e["gflops"], "torch_ms_runs": [x["torch_ms"] for x in t], "torch_ms": round(torch_ms, 3),
                         "torch_cpu_ms": round(torch_cpu, 3), "speed_ratio": round(torch_ms / e["ours_ms"], 3),
                         "cpu_ratio": round(torch_cpu / e["ours_cpu_ms"], 3)})
        doc["encoder_gemm_vs_openblas"] = {"torch_machine": torch_runs[0].get("machine"), "ours_machine": ours.get("machine"),
                                           "note": "PyTorch+OpenBLAS timed before and after ours (mean of the two medians); speed_ratio = torch_ms / ours_ms",
                                           "entries": rows}
        worst = min(r["speed_ratio"] for r in rows)
        targets["encoder_gemm_ge_1.0x_openblas"] = {"value": worst, "target": 1.0, "met": worst >= 1.0,
                                                    "note": "the worst of the encoder shapes"}
    doc["targets"] = targets
    json.dump(doc, open(out, "w"), indent=2)
    for k, t in targets.items():
        print(f"{k:40} {t['value']!s:>14}  target {t['target']!s:>12}  {'met' if t['met'] else 'MISSED'}", file=sys.stderr)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "bytes":
        print(json.dumps(decode_bytes(args[0])))
    elif cmd == "evict":
        evict(args[0])
    elif cmd == "resident":
        print(json.dumps(resident(args[0])))
    elif cmd == "time":
        print(json.dumps(parse_time(args[0])))
    elif cmd == "report":
        report(*args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
