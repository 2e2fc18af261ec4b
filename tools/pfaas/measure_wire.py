#!/usr/bin/python3
"""Bytes on the wire, measured: linfer writes the state of real-shaped random-weight models, this reads it.

    tools/pfaas/measure_wire.py --linfer build-pfmeas/linfer --models /work/rand/pfaas \
        --lengths 1024,2048 --out docs/img/pfaas-wire-measured.csv

For each architecture, a model with the published model's layer count and pattern, per-layer state and
attention dims and vocabulary (tools/pfaas/shapes.py; small hidden size and FFN) is made once with
tools/make_random_model.py. For each prompt length, state dtype (f32, bf16) and zstd on/off,
`linfer prefill --save-state` writes the wire stream (byte for byte what POST /v1/prefill sends), and
every layer's uncompressed bytes are compared with wire.layer_bytes: a mismatch stops the run.
--demo adds the trained demo model with a text prompt (the only trained state: the zstd ratio of
random weights' states says little about real ones). Rows: one per stream and part.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
import wire  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIELDS = ["arch", "model", "n_tokens", "dtype", "zstd", "part", "records", "bytes", "raw_bytes", "formula_bytes",
          "layers_checked", "prefill_s", "loadavg"]


def make_model(arch, folder):
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return
    os.makedirs(folder, exist_ok=True)
    cfg = os.path.join(folder, "wire-config.json")
    with open(cfg, "w") as f:
        json.dump(shapes.wire_config(arch), f, indent=1)
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "make_random_model.py"), "--config", cfg, folder],
                   check=True)


def prefill(linfer, model, prompt_args, dtype, zstd, path):
    cmd = [linfer, "prefill", "--model", model, *prompt_args, "--save-state", path, "--state-dtype", dtype]
    if zstd:
        cmd.append("--compress")
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def parts(stream):
    """part -> [records, stored bytes, raw bytes] for the header, fixed state, growing attention cache,
    logits and trailer."""
    p = {"header": [0, stream["header_bytes"], stream["header_bytes"]], "state": [0, 0, 0], "attention": [0, 0, 0],
         "logits": [0, 0, 0], "trailer": [0, wire.TRAILER, wire.TRAILER]}
    for r in stream["records"]:
        k = "state" if r["kind"] == "fixed" else "attention"
        p[k][0] += 1
        p[k][1] += r["bytes"]
        p[k][2] += wire.RECORD_FRAMING + r["raw"]
    if stream["logits"]:
        lg = stream["logits"]
        p["logits"] = [1, lg["bytes"], wire.RECORD_FRAMING + lg["raw"]]
    return p


def check_layers(arch, r, stream, dtype):
    """Every layer's uncompressed bytes against the formula; returns the formula's bytes per part."""
    kinds = wire.layer_kinds(arch, r)
    by_layer = {}
    for rec in stream["records"]:
        by_layer.setdefault(rec["layer"], []).append(rec)
    if sorted(by_layer) != list(range(len(kinds))):
        raise SystemExit(f"{arch}: the stream has state for layers {sorted(by_layer)}, expected 0..{len(kinds) - 1}")
    n = stream["header"]["n_tokens"]
    formula = {"state": 0, "attention": 0}
    for layer, kind in enumerate(kinds):
        recs, fixed, per_token = wire.layer_formula(arch, r, kind)
        got = sum(wire.RECORD_FRAMING + x["raw"] for x in by_layer[layer])
        want = wire.layer_bytes(arch, r, kind, n, dtype)
        if len(by_layer[layer]) != recs or got != want:
            raise SystemExit(f"{arch} layer {layer} ({kind}), {n} tokens, {dtype}: {len(by_layer[layer])} records, "
                             f"{got} bytes; the formula says {recs} records, {want} bytes")
        formula["attention" if per_token else "state"] += want
    formula["logits"] = wire.RECORD_FRAMING + 4 * r["vocab"]
    return formula


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--linfer", required=True)
    ap.add_argument("--models", required=True, help="folder for the generated models (made once)")
    ap.add_argument("--lengths", default="1024,2048")
    ap.add_argument("--archs", default="kimi_linear,qwen3_next,mamba2")
    ap.add_argument("--demo", default="", help="demo model folder; with --demo-text, also measure its trained state")
    ap.add_argument("--demo-text", default="")
    ap.add_argument("--demo-chars", default="4000,16000", help="text prompt lengths in characters")
    ap.add_argument("--tmp", default="/tmp/pfaas-wire")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    rows = []

    def measure(arch, model_name, folder, prompt_args, r, dtype, zstd):
        path = os.path.join(args.tmp, "state.bin")
        secs = prefill(args.linfer, folder, prompt_args, dtype, zstd, path)
        load = os.getloadavg()[0]
        with open(path, "rb") as f:
            stream = wire.parse(f.read())
        formula = check_layers(arch, r, stream, dtype) if r else {}
        n = stream["header"]["n_tokens"]
        for part, (recs, stored, raw) in parts(stream).items():
            rows.append({"arch": arch, "model": model_name, "n_tokens": n, "dtype": dtype, "zstd": int(zstd),
                         "part": part, "records": recs, "bytes": stored, "raw_bytes": raw,
                         "formula_bytes": formula.get(part, ""),
                         "layers_checked": len(wire.layer_kinds(arch, r)) if r and part in ("state", "attention") else "",
                         "prefill_s": f"{secs:.2f}", "loadavg": f"{load:.1f}"})
        print(f"{model_name} {n} tokens {dtype} zstd={int(zstd)}: {stream['total']} bytes, prefill {secs:.1f} s, "
              f"load {load:.1f}", flush=True)

    rng = np.random.default_rng(0)
    for arch in args.archs.split(","):
        r = shapes.REAL[arch]
        folder = os.path.join(args.models, arch)
        make_model(arch, folder)
        for T in (int(x) for x in args.lengths.split(",")):
            ids = ",".join(str(int(i)) for i in rng.integers(0, r["vocab"], T))
            for dtype in ("f32", "bf16"):
                for zstd in (False, True):
                    measure(arch, r["name"] + " (random weights)", folder, ["--prompt-ids", ids], r, dtype, zstd)
    if args.demo and args.demo_text:
        with open(args.demo_text, encoding="utf-8") as f:
            text = f.read()
        for chars in (int(x) for x in args.demo_chars.split(",")):
            for dtype in ("f32", "bf16"):
                for zstd in (False, True):
                    measure("kimi_linear", "demo (trained)", args.demo, ["--prompt", text[:chars]], None, dtype, zstd)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"{args.out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
