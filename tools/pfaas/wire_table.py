#!/usr/bin/python3
"""Bytes on the wire per request at 1K..128K tokens for the published shapes, from the measured streams.

    tools/pfaas/wire_table.py --measured docs/img/pfaas-wire-measured.csv --out docs/img/pfaas-wire.csv

Rows at a length linfer wrote (measure_wire.py) are copied as `measured`. The other lengths are
`computed`: the recurrent state, logits and trailer do not change with the length (the measured bytes
are reused), the attention cache grows by exactly its per-token bytes (wire.layer_formula, which the
measured streams matched layer by layer) and the header's JSON by the digits of the larger numbers
(rebuilt from a measured header). zstd sizes at computed lengths apply the ratio measured for each part
at the longest measured length (random weights: not what a trained model's state compresses to).
Beside them, at the state's element size: the KV cache of a full-attention model of the same width and
depth (plain multi-head attention, K and V of the hidden width on every layer, as docs/benchmarks.md
"State bytes per sequence") and an MLA latent cache (576 values per token on every layer).
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
import wire  # noqa: E402

FIELDS = ["arch", "model", "n_tokens", "dtype", "zstd", "source", "state_bytes", "attention_bytes", "other_bytes",
          "total_bytes", "full_attention_kv_bytes", "mla_cache_bytes"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measured", required=True)
    ap.add_argument("--lengths", default=",".join(str(1024 << i) for i in range(8)))  # 1K .. 128K
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.measured) as f:
        rows = [r for r in csv.DictReader(f) if r["formula_bytes"] != "" or r["part"] in ("header", "trailer")]
    streams = {}  # (arch, n, dtype, zstd) -> part -> row
    for r in rows:
        if "random" not in r["model"]:
            continue
        streams.setdefault((r["arch"], int(r["n_tokens"]), r["dtype"], int(r["zstd"])), {})[r["part"]] = r
    out = []
    for arch, real in shapes.REAL.items():
        measured_n = sorted({k[1] for k in streams if k[0] == arch})
        if not measured_n:
            continue
        ref_n = measured_n[-1]
        kinds = wire.layer_kinds(arch, real)
        per_token_values = sum(wire.layer_formula(arch, real, k)[2] for k in kinds)
        fa_values = wire.full_attention_values_per_token(real) * len(kinds)
        mla_values = wire.MLA_VALUES_PER_TOKEN * len(kinds)
        for dtype in ("f32", "bf16"):
            for zstd in (0, 1):
                ref = streams[(arch, ref_n, dtype, zstd)]
                raw_ref = streams[(arch, ref_n, dtype, 0)]
                ratio = {p: int(ref[p]["bytes"]) / int(raw_ref[p]["bytes"]) for p in ("state", "attention", "logits")
                         if int(raw_ref[p]["bytes"])}
                lengths = sorted(set(int(x) for x in args.lengths.split(",")) | set(measured_n))
                e = wire.ELEM[dtype]

                def computed(n):
                    att_raw = int(raw_ref["attention"]["raw_bytes"]) + per_token_values * e * (n - ref_n)
                    header = int(ref["header"]["bytes"]) + header_growth(kinds, arch, real, ref_n, n, e)
                    return (int(ref["state"]["bytes"]), round(att_raw * ratio.get("attention", 1.0)),
                            header + int(ref["logits"]["bytes"]) + wire.TRAILER)

                for n in lengths:
                    if (arch, n, dtype, zstd) in streams:
                        s = streams[(arch, n, dtype, zstd)]
                        state, att = int(s["state"]["bytes"]), int(s["attention"]["bytes"])
                        other = sum(int(s[p]["bytes"]) for p in ("header", "logits", "trailer"))
                        source = "measured"
                        if not zstd and computed(n) != (state, att, other):  # the extrapolation, checked
                            sys.exit(f"{arch} {n} tokens {dtype}: measured {(state, att, other)}, "
                                     f"computed from {ref_n} tokens {computed(n)}")
                    else:
                        (state, att, other), source = computed(n), "computed"
                    out.append({"arch": arch, "model": real["name"], "n_tokens": n, "dtype": dtype, "zstd": zstd,
                                "source": source, "state_bytes": state, "attention_bytes": att, "other_bytes": other,
                                "total_bytes": state + att + other, "full_attention_kv_bytes": fa_values * e * n,
                                "mla_cache_bytes": mla_values * e * n})
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(out)
    print(f"{args.out}: {len(out)} rows")


def header_growth(kinds, arch, real, n0, n1, elem):
    """Extra header bytes at n1 tokens vs n0: the JSON spells n_tokens once, and rows and bytes once per
    growing tensor."""
    def digits(x):
        return len(str(x))
    grow = 0
    for k in kinds:
        recs, _fixed, per_token = wire.layer_formula(arch, real, k)
        if per_token:
            per_rec = per_token // recs * elem
            grow += recs * (digits(n1) - digits(n0) + digits(per_rec * n1) - digits(per_rec * n0))
    return digits(n1) - digits(n0) + grow


if __name__ == "__main__":
    main()
