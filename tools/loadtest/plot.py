#!/usr/bin/python3
"""Plots sweep.sh summaries: aggregate output tokens/s and TPOT p50 against concurrency.

    tools/loadtest/plot.py OUT.png LABEL=summary.json [LABEL=summary.json ...]

Needs Debian's python3-matplotlib (run with /usr/bin/python3).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    fig, (tput, tpot) = plt.subplots(1, 2, figsize=(10, 4))
    cpu = ""
    for spec in sys.argv[2:]:
        label, path = spec.split("=", 1)
        with open(path) as f:
            s = json.load(f)
        cpu = f"{s['cpu']}, {s['threads']} threads, {s['date']}"
        cs = [r["concurrency"] for r in s["runs"]]
        tput.plot(cs, [r["output_tokens_per_s"] for r in s["runs"]], marker="o", label=label)
        tpot.plot(cs, [r["tpot_ms"]["p50"] for r in s["runs"]], marker="o", label=label)
    for ax, title in ((tput, "aggregate output tokens/s"), (tpot, "TPOT p50 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent streaming clients")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"linfer serve, greedy streaming, loopback ({cpu})", fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[1], dpi=110)


if __name__ == "__main__":
    main()
