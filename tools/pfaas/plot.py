#!/usr/bin/python3
"""The figures of docs/prefill-as-a-service.md "Measurements", from the CSVs the measuring tools write.

    /usr/bin/python3 tools/pfaas/plot.py --dir docs/img

Reads pfaas-wire.csv (wire_table.py), pfaas-ttft.csv (ttft_model.py, the modelled times), pfaas-e2e.csv
and pfaas-e2e-records.csv (e2e_summary.py, the measured shaped-link runs) from --dir and writes
pfaas-wire-bytes.png, pfaas-ttft.png and pfaas-streaming.png beside them. A doc tool (Debian's python3-matplotlib), not part of any build.
"""

import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MB = 1e6


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def tokens_axis(ax):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prompt tokens")
    ax.grid(True, which="both", alpha=0.3)


def wire_plot(d, out):
    rows = read(os.path.join(d, "pfaas-wire.csv"))
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 5.2), sharey=True)
    for ax, arch in zip(axes, archs):
        sel = [r for r in rows if r["arch"] == arch]
        model = sel[0]["model"]

        def series(dtype, zstd, key):
            pts = sorted((int(r["n_tokens"]), int(r[key]) / MB, r["source"]) for r in sel
                         if r["dtype"] == dtype and int(r["zstd"]) == zstd)
            return [p[0] for p in pts], [p[1] for p in pts], pts

        for dtype, color in (("f32", "tab:blue"), ("bf16", "tab:orange")):
            x, y, pts = series(dtype, 0, "total_bytes")
            ax.plot(x, y, "-", color=color, label=f"linfer state + cache, {dtype}")
            mx = [p for p in pts if p[2] == "measured"]
            ax.plot([p[0] for p in mx], [p[1] for p in mx], "o", color=color, ms=7, mfc="none",
                    label=f"measured ({dtype})" if dtype == "f32" else None)
            x, y, _ = series(dtype, 0, "state_bytes")
            ax.plot(x, y, ":", color=color, label=f"recurrent state part, {dtype}")
            x, y, _ = series(dtype, 1, "total_bytes")
            ax.plot(x, y, "--", color=color, alpha=0.6, label=f"{dtype} + zstd (random-weight ratio)")
        x, y, _ = series("bf16", 0, "full_attention_kv_bytes")
        ax.plot(x, y, "-", color="tab:red", lw=2, label="plain MHA KV, same width and depth, bf16")
        x, y, _ = series("bf16", 0, "mla_cache_bytes")
        ax.plot(x, y, "-", color="tab:purple", label="MLA latent cache, all layers, bf16")
        tokens_axis(ax)
        ax.set_yscale("log")
        ax.set_title(model, fontsize=10)
    axes[0].set_ylabel("bytes on the wire per request (MB)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7.5, loc="lower center", ncol=5)
    fig.suptitle("State bytes per request (circles: measured streams; lines beyond them: computed)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out, dpi=110)


def ttft_plot(d, out):
    rows = read(os.path.join(d, "pfaas-ttft.csv"))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    links = list(dict.fromkeys((r["link_mbit"], r["delay_ms"]) for r in rows))
    fig, axes = plt.subplots(len(cases), len(links), figsize=(6 * len(links), 4.3 * len(cases)), squeeze=False)
    for i, case in enumerate(cases):
        for j, (mbit, ms) in enumerate(links):
            ax = axes[i][j]
            sel = [r for r in rows if r["case"] == case and r["link_mbit"] == mbit and r["delay_ms"] == ms
                   and r["dtype"] == "f32"]
            speedups = list(dict.fromkeys(r["speedup"] for r in sel))
            base = [r for r in sel if r["speedup"] == speedups[0]]
            x = [int(r["n_tokens"]) for r in base]
            ax.plot(x, [float(r["local_s"]) for r in base], "k-", lw=2, label="local prefill (this CPU)")
            for s, color in zip(speedups, ("tab:blue", "tab:green", "tab:orange")):
                ss = [r for r in sel if r["speedup"] == s]
                ax.plot(x, [float(r["remote_streamed_s"]) for r in ss], "-", color=color,
                        label=f"remote, prefill box {float(s):g}x faster, streamed")
                ax.plot(x, [float(r["remote_sequential_s"]) for r in ss], "--", color=color,
                        label=f"remote, {float(s):g}x, state sent after the prefill")
            tokens_axis(ax)
            ax.set_yscale("log")
            ax.set_ylabel("time to first token (s)")
            ax.set_title(f"{case}: {float(mbit):g} Mbit/s, {float(ms):g} ms one way", fontsize=9)
            ax.legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def streaming_plot(d, out):
    runs = read(os.path.join(d, "pfaas-e2e.csv"))
    recs = read(os.path.join(d, "pfaas-e2e-records.csv"))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colors = ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red")
    for run, color in zip(runs, colors):
        done = float(run["node_done_client_s"])
        r = [x for x in recs if x["run"] == run["run"]]
        label = ("unshaped veth" if float(run["link_mbit"]) == 0
                 else f"{float(run['link_mbit']):g} Mbit/s, {float(run['delay_ms']):g} ms")
        nbytes = int(run["bytes"]) / MB
        ax.plot([float(x["t_s"]) - done for x in r], [int(x["bytes"]) / MB for x in r], "-", color=color,
                label=f"{run['model'].split('-')[0]}, {run['tokens']} tokens, {label}: streamed")
        ax.plot([0, float(run["sequential_drain_s"])], [0, nbytes], ":", color=color,
                label="  the same state sent after the prefill")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(-25, 16)
    ax.set_xlabel("seconds from the end of the prefill (the prefill node's last write)")
    ax.set_ylabel("state bytes received by the decode host (MB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Measured arrival of the state at the decode host: streamed layer by layer vs sent after the "
                 "prefill\n(2-core Zen 2 at load 14-25; the prefills' own durations vary with the load)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    wire_plot(args.dir, os.path.join(args.dir, "pfaas-wire-bytes.png"))
    ttft_plot(args.dir, os.path.join(args.dir, "pfaas-ttft.png"))
    streaming_plot(args.dir, os.path.join(args.dir, "pfaas-streaming.png"))


if __name__ == "__main__":
    main()
