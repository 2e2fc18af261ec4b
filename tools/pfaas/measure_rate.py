#!/usr/bin/python3
"""Local prefill rate vs prompt length: `linfer bench -p N --json` for each model, one CSV row per length.

    tools/pfaas/measure_rate.py --linfer build-pfmeas/linfer --models models/demo,/work/rand/kimi_linear \
        --lengths 1024,2048,4096 --out docs/img/pfaas-prefill-rate.csv

Wall-clock seconds and the process's CPU seconds are both kept, with the load average when each
length finished: on a shared machine the wall-clock rate depends on everyone else's work, the rate
per CPU-second much less.
"""

import argparse
import csv
import json
import os
import subprocess


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--linfer", required=True)
    ap.add_argument("--models", required=True, help="comma-separated model folders")
    ap.add_argument("--lengths", default="1024,2048,4096")
    ap.add_argument("--repetitions", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    for model in args.models.split(","):
        for n in args.lengths.split(","):
            res = subprocess.run([args.linfer, "bench", "--model", model, "-p", n, "-n", "0", "-r",
                                  str(args.repetitions), "--json"], check=True, capture_output=True, text=True)
            b = json.loads(res.stdout)[0]
            wall = b["median_s"]
            cpu = sorted(b["cpu_samples_s"])[len(b["cpu_samples_s"]) // 2]
            folder = os.path.normpath(os.path.abspath(model))  # parent/name: /work/rand/x and models/x differ
            rows.append({"model": os.path.join(os.path.basename(os.path.dirname(folder)), os.path.basename(folder)), "arch": b["architecture"],
                         "n_params": b["n_params"], "threads": b["threads"], "n_tokens": b["n_prompt"],
                         "wall_s": f"{wall:.3f}", "cpu_s": f"{cpu:.3f}", "tokens_per_s": f"{b['tokens_per_s']:.1f}",
                         "tokens_per_cpu_s": f"{b['tokens_per_cpu_s']:.1f}", "loadavg": f"{os.getloadavg()[0]:.1f}"})
            print(rows[-1], flush=True)
    exists = os.path.exists(args.out) and os.path.getsize(args.out) > 0
    with open(args.out, "a", newline="") as f:  # appends: several runs, one table
        w = csv.DictWriter(f, list(rows[0]))
        if not exists:
            w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
