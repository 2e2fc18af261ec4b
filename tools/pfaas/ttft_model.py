#!/usr/bin/python3
"""Time to first token, local prefill vs remote prefill over a link, from measured rates and bytes.

    tools/pfaas/ttft_model.py --rate docs/img/pfaas-prefill-rate.csv --rate-model kimi_linear \
        --config /work/rand/kimi_linear/config.json --wire-measured docs/img/pfaas-wire-measured.csv --links 1000:20,100:80 --speedups 1,10 \
        --out docs/img/pfaas-ttft.csv --crossover-out docs/img/pfaas-crossover.csv

local(T)   = t(T), the local prefill: t(T) = a·T + b·T² fitted to the measured CPU seconds / threads
             of --rate-model (what the machine's cores give when nothing else runs; the attention
             layers make it grow faster than T)
remote(T)  = 3·d (TCP handshake, then the request) + the streamed prefill on a machine `speedup`
             times faster, every layer finishing at an even share of t(T−1)/speedup and its bytes
             queued on a serial link of the given rate as soon as it is done (the logits last)
             + d (the last byte's way back) + t(1) (the decode node computes the prompt's last token)
sequential = the same, but the bytes leave only after the whole prefill (no streaming).
Bytes per layer: wire.layer_bytes for the model's config (exact: the streams linfer writes matched it
layer by layer), the logits record and the header (its bytes per tensor as in the measured streams). TCP slow start and loss are left out: a link that
is new for each request adds about log2(bytes in flight / 14.6 KB) round trips to ramp up.
The crossover is the shortest prompt from which remote beats local.
"""

import argparse
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
import wire  # noqa: E402


def header_bytes_per_tensor(wire_csv):
    """The header's bytes per tensor entry in the streams measure_wire.py measured (the JSON entries are
    alike: a few bytes apart between architectures)."""
    with open(wire_csv) as f:
        rows = [r for r in csv.DictReader(f) if "random" in r["model"] and r["zstd"] == "0"]
    head = {(r["model"], r["n_tokens"], r["dtype"]): int(r["bytes"]) - wire.HEADER_FRAMING for r in rows
            if r["part"] == "header"}
    n = {}
    for r in rows:
        if r["part"] in ("state", "attention"):
            k = (r["model"], r["n_tokens"], r["dtype"])
            n[k] = n.get(k, 0) + int(r["records"])
    return sum(head.values()) / sum(n[k] for k in head)


def fit_local(rate_csv, model):
    with open(rate_csv) as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == model]
    if not rows:
        sys.exit(f"{rate_csv}: no rows for model {model}")
    T = np.array([float(r["n_tokens"]) for r in rows])
    secs = np.array([float(r["cpu_s"]) / float(r["threads"]) for r in rows])
    (a, b), *_ = np.linalg.lstsq(np.stack([T, T * T], axis=1), secs, rcond=None)
    return lambda n: a * n + max(b, 0.0) * n * n


def layer_plan(arch, r, n, dtype, per_tensor):
    kinds = wire.layer_kinds(arch, r)
    per_layer = [wire.layer_bytes(arch, r, k, n, dtype) for k in kinds]
    n_tensors = sum(wire.layer_formula(arch, r, k)[0] for k in kinds)
    head = wire.HEADER_FRAMING + round(per_tensor * n_tensors)
    tail = wire.RECORD_FRAMING + 4 * r["vocab"] + wire.TRAILER
    return head, per_layer, tail


def remote(n, t_local, speedup, rate_bps, delay_s, arch, r, dtype, streamed, per_tensor):
    head, per_layer, tail = layer_plan(arch, r, n - 1, dtype, per_tensor)
    t_pf = t_local(n - 1) / speedup
    link = rate_bps / 8
    free = head / link  # the header leaves at once: it is planned before the forward
    L = len(per_layer)
    for i, b in enumerate(per_layer):
        done = t_pf * (i + 1) / L if streamed else t_pf
        free = max(free, done) + b / link
    free = max(free, t_pf) + tail / link
    return 3 * delay_s + free + delay_s + t_local(1), head + sum(per_layer) + tail


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", required=True)
    ap.add_argument("--rate-model", required=True, help="the `model` column of --rate to fit")
    ap.add_argument("--config", required=True, help="that model's config.json (its bytes per layer)")
    ap.add_argument("--wire-measured", required=True, help="measure_wire.py's CSV (the header's size per tensor)")
    ap.add_argument("--case", default="", help="name in the output (default: --rate-model)")
    ap.add_argument("--links", default="1000:20,100:80", help="Mbit/s:one-way ms, comma-separated")
    ap.add_argument("--speedups", default="1,10", help="remote prefill machine's speed / this machine's")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--lengths", default=",".join(str(1024 << i) for i in range(8)))
    ap.add_argument("--out", required=True)
    ap.add_argument("--crossover-out", required=True)
    args = ap.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    r = shapes.from_config(config)
    arch = config["model_type"]
    t_local = fit_local(args.rate, args.rate_model)
    per_tensor = header_bytes_per_tensor(args.wire_measured)
    case = args.case or args.rate_model
    rows, cross = [], []
    lengths = [int(x) for x in args.lengths.split(",")]
    scan = sorted(set(np.unique(np.geomspace(2, max(lengths), 400).astype(int))))
    for link in args.links.split(","):
        mbit, ms = (float(x) for x in link.split(":"))
        for s in (float(x) for x in args.speedups.split(",")):
            for dtype in args.dtypes.split(","):
                for n in lengths:
                    st, nbytes = remote(n, t_local, s, mbit * 1e6, ms / 1e3, arch, r, dtype, True, per_tensor)
                    sq, _ = remote(n, t_local, s, mbit * 1e6, ms / 1e3, arch, r, dtype, False, per_tensor)
                    rows.append({"case": case, "link_mbit": mbit, "delay_ms": ms, "speedup": s, "dtype": dtype,
                                 "n_tokens": n, "bytes": nbytes, "local_s": f"{t_local(n):.4f}",
                                 "remote_streamed_s": f"{st:.4f}", "remote_sequential_s": f"{sq:.4f}"})
                for streamed in (True, False):
                    wins = [n for n in scan
                            if remote(n, t_local, s, mbit * 1e6, ms / 1e3, arch, r, dtype, streamed, per_tensor)[0] < t_local(n)]
                    first = next((n for n in wins if all(m in wins for m in scan if m >= n)), "")
                    cross.append({"case": case, "link_mbit": mbit, "delay_ms": ms, "speedup": s, "dtype": dtype,
                                  "streamed": int(streamed), "crossover_tokens": first})
    for path, data in ((args.out, rows), (args.crossover_out, cross)):
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, list(data[0]))
            if not exists:
                w.writeheader()
            w.writerows(data)
    for c in cross:
        print(c)


if __name__ == "__main__":
    main()
