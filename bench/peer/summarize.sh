#!/usr/bin/env bash
# Markdown table from a bench/peer/run.sh results directory: best (minimum) over the rounds of each
# measure, ours vs llama.cpp, with this session's floors.
#   bench/peer/summarize.sh <results_dir>
# Counting, one for both sides (per head-token; d = 128 for GDN / KDA, P = 64, N = 128 for Mamba2):
#   bytes: the fp32 state read and written once per decode step (2·4·d² resp. 2·4·P·N per head);
#   flops: the recurrence, 7·d² (GDN / KDA) resp. 5·P·N (Mamba2: decay, update FMA, output FMA).
# Floor per call = max(state bytes / copy bandwidth, flops / FMA peak), both measured at 2 threads by
# bench_delta's BM_Floor_* in the same session (wall clock, so under the same load as the kernels); the
# CPU-time floor uses the same loops at 1 thread, per CPU-second.
set -euo pipefail
python3 - "$1" <<'PY'
import glob, json, os, re, sys

out = sys.argv[1]

def shapes(name):
    op, kind, n = re.match(r"(gdn|kda|mamba2)_(decode|prefill)_[BT](\d+)", name).groups()
    n = int(n)
    if op == "mamba2":
        H, per_state, flops = 48, 64 * 128, 5 * 64 * 128
    else:
        H, per_state, flops = 16, 128 * 128, 7 * 128 * 128
    ht = n * H
    state_bytes = 2 * 4 * per_state * (ht if kind == "decode" else H)
    return ht, state_bytes, ht * flops

def ours_name(bm):  # Google Benchmark name -> case name, thread count
    m = re.match(r"BM_(Decode|Prefill)/(GDN|KDA)/(?:B|T):(\d+)/(?:chunk:0/)?threads:(\d+)", bm)
    if m:
        kind = "decode_B" if m[1] == "Decode" else "prefill_T"
        return f"{m[2].lower()}_{kind}{m[3]}", int(m[4])
    m = re.match(r"BM_Mamba2_(Step|Prefill)/(?:B|T):(\d+)/threads:(\d+)", bm)
    if m:
        kind = "decode_B" if m[1] == "Step" else "prefill_T"
        return f"mamba2_{kind}{m[2]}", int(m[3])
    return None, None

US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
best = {}  # (side, measure, case) -> min value
def keep(key, v):
    best[key] = min(v, best.get(key, float("inf")))

floors = {}
for f in sorted(glob.glob(os.path.join(out, "ours_*_r*.json"))):
    for b in json.load(open(f))["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        if b["name"].startswith("BM_Floor_StreamCopy") and "threads:2" in b["name"]:
            floors["bw"] = max(floors.get("bw", 0), b["bytes_per_second"])
        if b["name"].startswith("BM_Floor_FmaPeak") and "threads:2" in b["name"]:
            floors["fma"] = max(floors.get("fma", 0), b["flops"])
        per_cpu = b["real_time"] / b["cpu_time"] if b.get("cpu_time") else 0
        if b["name"].startswith("BM_Floor_StreamCopy") and "threads:1" in b["name"]:
            floors["bw1"] = max(floors.get("bw1", 0), b["bytes_per_second"] * per_cpu)
        if b["name"].startswith("BM_Floor_FmaPeak") and "threads:1" in b["name"]:
            floors["fma1"] = max(floors.get("fma1", 0), b["flops"] * per_cpu)
        case, threads = ours_name(b["name"])
        if not case:
            continue
        scale = US[b["time_unit"]]
        if threads == 2:
            keep(("ours", "wall", case), b["real_time"] * scale)
        else:  # 1 thread: the calling thread's CPU time is all of the work
            keep(("ours", "cpu", case), b["cpu_time"] * scale)

for f in sorted(glob.glob(os.path.join(out, "peer_r*.txt"))):
    runs = {}
    for line in open(f):
        m = re.search(r"name=(\w+),.*:\s+(\d+) runs -\s+([\d.]+) us/run", line)
        if m:
            runs[m[1]] = int(m[2])
            keep(("peer", "wall", m[1]), float(m[3]))
        m = re.match(r"cpu_time (\w+) wall=([\d.]+) user=([\d.]+) sys=([\d.]+)", line)
        if m and m[1] in runs:  # + 1: the warm-up execution
            keep(("peer", "cpu", m[1]), (float(m[3]) + float(m[4])) * 1e6 / (runs[m[1]] + 1))

cases = [l.split()[-1] for l in open(os.path.join(out, "cases.txt"))]
nan = float("nan")
bw, fma, bw1, fma1 = (floors.get(k, nan) for k in ("bw", "fma", "bw1", "fma1"))
print(f"Floors this session: 2 threads, wall clock: copy {bw / 1e9:.1f} GB/s, FMA {fma / 1e9:.1f} GFLOP/s; "
      f"1 thread, per CPU-second: copy {bw1 / 1e9:.1f} GB/s, FMA {fma1 / 1e9:.1f} GFLOP/s.\n")
print("| op | shape | linfer µs | llama.cpp µs | floor µs | linfer GB/s · GFLOP/s | llama.cpp GB/s · GFLOP/s "
      "| linfer CPU µs/head-tok | llama.cpp CPU µs/head-tok | CPU floor µs/head-tok | llama.cpp / linfer wall · CPU |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in cases:
    ht, sb, fl = shapes(c)
    op, kind, n = c.split("_")
    ow, pw = best.get(("ours", "wall", c)), best.get(("peer", "wall", c))
    oc, pc = best.get(("ours", "cpu", c)), best.get(("peer", "cpu", c))
    floor = max(sb / bw, fl / fma) * 1e6
    cpu_floor = max(sb / bw1, fl / fma1) * 1e6 / ht
    def rates(t):
        if t is None:
            return "–"
        gbs = f"{sb / (t * 1e-6) / 1e9:.1f} GB/s · " if kind == "decode" else ""
        return f"{gbs}{fl / (t * 1e-6) / 1e9:.1f}"
    f = lambda v, d=0: "–" if v is None else f"{v:,.{d}f}"
    ratio = (f"{pw / ow:.2f}× · " if ow and pw else "– · ") + (f"{pc / oc:.2f}×" if oc and pc else "–")
    print(f"| {op.upper() if op != 'mamba2' else 'Mamba2'} {kind} | {n} | {f(ow)} | {f(pw)} | {f(floor)} "
          f"| {rates(ow)} | {rates(pw)} | {f(oc and oc / ht, 2)} | {f(pc and pc / ht, 2)} | {f(cpu_floor, 2)} | {ratio} |")
print()
print("load average (1, 5, 15 min) before each step:")
print("```")
print(open(os.path.join(out, "load.txt")).read().rstrip())
print("```")
PY
