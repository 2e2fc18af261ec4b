#!/usr/bin/python3
"""Markdown tables for docs/prefill-as-a-service.md "Measurements", printed from the CSVs in --dir.

    /usr/bin/python3 tools/pfaas/tables.py --dir docs/img
"""

import argparse
import csv
import os

MiB = 2 ** 20


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return list(csv.DictReader(f))


def size(b):
    return f"{b / 2 ** 30:.2f} GiB" if b >= 2 ** 30 else f"{b / MiB:.1f} MiB"


def wire_table(d, lengths):
    rows = read(d, "pfaas-wire.csv")
    print("| model | what | " + " | ".join(f"{n // 1024}K" for n in lengths) + " |")
    print("|---|---|" + "---:|" * len(lengths))
    for model in dict.fromkeys(r["model"] for r in rows):
        sel = {(r["dtype"], int(r["zstd"]), int(r["n_tokens"])): r for r in rows if r["model"] == model}
        first = True
        for dtype, zstd, what in (("f32", 0, "linfer, f32"), ("bf16", 0, "linfer, bf16"),
                                  ("f32", 1, "linfer, f32 + zstd*"), ("bf16", 1, "linfer, bf16 + zstd*")):
            cells = [size(int(sel[(dtype, zstd, n)]["total_bytes"])) + (" (m)" if sel[(dtype, zstd, n)]["source"] ==
                                                                       "measured" else "") for n in lengths]
            print(f"| {model if first else ''} | {what} | " + " | ".join(cells) + " |")
            first = False
        for key, what in (("full_attention_kv_bytes", "plain MHA KV, bf16"), ("mla_cache_bytes", "MLA cache, bf16")):
            print(f"| | {what} | " + " | ".join(size(int(sel[('bf16', 0, n)][key])) for n in lengths) + " |")
    print()
    print("| model | dtype | state part (constant) | attention part per token | header + logits + trailer |")
    print("|---|---|---:|---:|---:|")
    for model in dict.fromkeys(r["model"] for r in rows):
        for dtype in ("f32", "bf16"):
            a, b = sorted((r for r in rows if r["model"] == model and r["dtype"] == dtype and r["zstd"] == "0"),
                          key=lambda r: int(r["n_tokens"]))[:2]
            per_token = (int(b["attention_bytes"]) - int(a["attention_bytes"])) / (int(b["n_tokens"]) - int(a["n_tokens"]))
            print(f"| {model} | {dtype} | {int(a['state_bytes']):,} B | {per_token:,.0f} B | {int(a['other_bytes']):,} B |")


def zstd_table(d):
    rows = read(d, "pfaas-wire-measured.csv")
    print("| model | tokens | dtype | state: raw → zstd | attention cache: raw → zstd | logits: raw → zstd |")
    print("|---|---:|---|---:|---:|---:|")
    key = {}
    for r in rows:
        key.setdefault((r["model"], r["n_tokens"], r["dtype"]), {}).setdefault(r["part"], {})[r["zstd"]] = r
    for (model, n, dtype), parts in key.items():
        cells = []
        for p in ("state", "attention", "logits"):
            raw, z = int(parts[p]["0"]["bytes"]), int(parts[p]["1"]["bytes"])
            cells.append(f"{raw:,} → {z:,} ({100 * z / raw:.0f} %)" if raw else "–")
        print(f"| {model} | {n} | {dtype} | " + " | ".join(cells) + " |")


def rate_table(d):
    rows = read(d, "pfaas-prefill-rate.csv")
    print("| model | tokens | wall s (load) | CPU s | tokens / s (wall, loaded) | tokens per CPU-second |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} ({int(r['n_params']) / 1e6:.0f}M) | {r['n_tokens']} | {r['wall_s']} ({r['loadavg']}) | "
              f"{r['cpu_s']} | {r['tokens_per_s']} | {r['tokens_per_cpu_s']} |")


def e2e_table(d):
    rows = read(d, "pfaas-e2e.csv")
    print("| model | link | tokens | state bytes | prefill node: forward / total | streamed: last byte after the node's "
          "end | sent after the prefill: transfer | hidden | TTFT remote / local | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        link = "unshaped veth" if float(r["link_mbit"]) == 0 else f"{float(r['link_mbit']):g} Mbit/s, {r['delay_ms']} ms"
        print(f"| {r['model'].split('-')[0]} | {link} | {r['tokens']} | {int(r['bytes']):,} | "
              f"{float(r['node_forward_s']):.1f} / {float(r['node_total_s']):.1f} s | {float(r['streamed_drain_s']):.2f} s | "
              f"{float(r['sequential_drain_s']):.2f} s | {r['hidden_pct']} % | "
              f"{float(r['remote_ttft_s']):.1f} / {float(r['local_ttft_s']):.1f} s | "
              f"{r['loadavg_before']}–{r['loadavg_after']} |")


def crossover_table(d):
    rows = read(d, "pfaas-crossover.csv")
    same = [r for r in rows if float(r["speedup"]) == 1]
    if same and not any(r["crossover_tokens"] for r in same):
        print("(a prefill box as fast as this machine: remote never wins, for every model, link and dtype)\n")
    print("| model | link | prefill box speed-up | dtype | streamed: remote wins from | sent after the prefill: from |")
    print("|---|---|---:|---|---:|---:|")
    key = {}
    for r in rows:
        if float(r["speedup"]) != 1:
            key.setdefault((r["case"], r["link_mbit"], r["delay_ms"], r["speedup"], r["dtype"]), {})[r["streamed"]] = r
    for (case, mbit, ms, s, dtype), v in key.items():
        def tok(x):
            return f"{int(x['crossover_tokens']):,} tokens" if x["crossover_tokens"] else "never"
        print(f"| {case} | {float(mbit):g} Mbit/s, {float(ms):g} ms | {float(s):g}x | {dtype} | {tok(v['1'])} | "
              f"{tok(v['0'])} |")


def ttft_table(d, lengths):
    rows = [r for r in read(d, "pfaas-ttft.csv") if float(r["speedup"]) != 1 and r["dtype"] == "f32"]
    print("| model | link | speed-up | " + " | ".join(f"{n // 1024}K: local / streamed / after" for n in lengths) + " |")
    print("|---|---|---:|" + "---:|" * len(lengths))
    key = {}
    for r in rows:
        key.setdefault((r["case"], r["link_mbit"], r["delay_ms"], r["speedup"]), {})[int(r["n_tokens"])] = r
    for (case, mbit, ms, s), by_n in key.items():
        cells = [f"{float(by_n[n]['local_s']):.1f} / {float(by_n[n]['remote_streamed_s']):.2f} / "
                 f"{float(by_n[n]['remote_sequential_s']):.2f} s" for n in lengths]
        print(f"| {case} | {float(mbit):g} Mbit/s, {float(ms):g} ms | {float(s):g}x | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lengths", default="1024,4096,32768,131072")
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    for name, fn in (("wire", lambda: wire_table(args.dir, lengths)), ("zstd", lambda: zstd_table(args.dir)),
                     ("rate", lambda: rate_table(args.dir)), ("e2e", lambda: e2e_table(args.dir)),
                     ("crossover", lambda: crossover_table(args.dir)),
                     ("ttft", lambda: ttft_table(args.dir, [1024, 4096, 32768]))):
        print(f"<!-- {name} -->")
        try:
            fn()
        except FileNotFoundError as e:
            print(f"(missing: {e.filename})")
        print()


if __name__ == "__main__":
    main()
