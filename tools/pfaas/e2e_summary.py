#!/usr/bin/python3
"""One CSV row per tools/pfaas/shaped_link.sh run, and each run's record arrivals beside it.

    tools/pfaas/e2e_summary.py --runs 'none=/tmp/pfaas-e2e/none,1g=/tmp/pfaas-e2e/1g' \
        --out docs/img/pfaas-e2e.csv --records-out docs/img/pfaas-e2e-records.csv

Per run: the prefill node's forward and total time (its log line), the streamed state's first and last
byte at the client and how long after the node's end the last byte came (the drain), the sequential
variant (prefill to a file, then download it over the same
link), and the two times to first token. Link rate and delay are read from the run's info.txt.
"""

import argparse
import csv
import re


def kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition(" ")
            out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="name=dir,...")
    ap.add_argument("--out", required=True)
    ap.add_argument("--records-out", required=True)
    args = ap.parse_args()
    rows, recs = [], []
    for item in args.runs.split(","):
        name, d = item.split("=", 1)
        info, seq, ttft = kv(f"{d}/info.txt"), kv(f"{d}/sequential.txt"), kv(f"{d}/ttft.txt")
        with open(f"{d}/prefill-node.log") as f:
            log = f.read()
        m = re.search(r"prefill (\d+) tokens .*?-> (\d+) bytes, queue ([\d.]+) ms, total ([\d.]+) ms \(forward "
                      r"([\d.]+) ms, writing ([\d.]+) ms, (\d+)% of it hidden\)", log)
        if not m:
            raise SystemExit(f"{d}/prefill-node.log: no prefill line")
        with open(f"{d}/stream.csv") as f:
            arrivals = list(csv.DictReader(f))
        for a in arrivals:
            recs.append({"run": name, **a})
        # The node's end (its last write) on the client's clock: the relay accepts the connection at once and
        # delivers the request one delay later. What the link adds after that, streamed: the drain; sent
        # after the prefill (sequential): the download less the request's way there. Both include the
        # answer's one delay back; the hidden share leaves it out of both.
        d_s = float(info["delay_ms"]) / 1e3
        node_done = d_s + (float(m.group(3)) + float(m.group(4))) / 1e3
        drain = float(arrivals[-1]["t_s"]) - node_done
        seq_drain = float(seq["download_s"]) - d_s
        rows.append({"run": name, "model": info["fingerprint"], "link_mbit": info["rate_mbit"],
                     "delay_ms": info["delay_ms"], "tokens": m.group(1), "bytes": m.group(2),
                     "node_forward_s": float(m.group(5)) / 1e3, "node_total_s": float(m.group(4)) / 1e3,
                     "client_first_byte_s": arrivals[0]["t_s"], "client_last_byte_s": arrivals[-1]["t_s"],
                     "node_done_client_s": f"{node_done:.3f}", "streamed_drain_s": f"{drain:.3f}", "sequential_drain_s": f"{seq_drain:.3f}",
                     "hidden_pct": f"{100 * (1 - (drain - d_s) / (seq_drain - d_s)):.1f}",
                     "sequential_forward_s": seq["forward_s"], "sequential_download_s": seq["download_s"],
                     "sequential_last_byte_s": f"{float(seq['forward_s']) + float(seq['download_s']):.3f}",
                     "remote_ttft_s": ttft["remote_ttft_s"], "local_ttft_s": ttft["local_ttft_s"],
                     "loadavg_before": info["loadavg_before"].split()[0],
                     "loadavg_after": info["loadavg_after"].split()[0]})
    for path, data in ((args.out, rows), (args.records_out, recs)):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, list(data[0]))
            w.writeheader()
            w.writerows(data)


if __name__ == "__main__":
    main()
