#!/usr/bin/python3
"""POST /v1/prefill and log when each part of the state stream arrives.

    tools/pfaas/record_times.py --url http://HOST:PORT --model-dir DIR --tokens 1024 [--bf16] [--zstd] \
        --fingerprint FP --out records.csv

Sends `--tokens` random token ids (seeded) and reads the chunked answer as it comes, walking the wire
format (docs/state-format.md) without keeping the payloads: one CSV row per part (header, each record,
trailer) with the seconds from sending the request to the arrival of the part's last byte, its layer
and the stream bytes received so far. The first row is the response's first byte. The model's
fingerprint comes from --fingerprint (`curl URL/v1/prefill` with a wrong one answers 409 naming it).
"""

import argparse
import csv
import http.client
import json
import random
import struct
import sys
import time
import urllib.parse


class Walker:
    """Feeds stream bytes in any pieces; calls on_part(name, layer, offset_end) when a part is complete."""

    def __init__(self, on_part):
        self.on_part = on_part
        self.buf = b""
        self.pos = 0          # stream bytes consumed
        self.skip = 0         # payload bytes still to pass over
        self.state = "magic"
        self.tensors = []
        self.index = 0

    def feed(self, data):
        while data:
            if self.skip:
                n = min(self.skip, len(data))
                self.skip -= n
                self.pos += n
                data = data[n:]
                if not self.skip and self.state == "payload":
                    self.state = "hash"
                continue
            need = {"magic": 16, "body": self.body_len + 8 if self.state == "body" else 0, "tag": 8, "lens": 16,
                    "hash": 8, "trailer": 8}[self.state]
            take = min(need - len(self.buf), len(data))
            self.buf += data[:take]
            data = data[take:]
            self.pos += take
            if len(self.buf) < need:
                return
            self.step()

    def step(self):
        b, self.buf = self.buf, b""
        if self.state == "magic":
            if b[:8] != b"LINFSTAT":
                raise ValueError("not a linfer state")
            self.body_len = struct.unpack_from("<I", b, 12)[0]
            self.state = "body"
        elif self.state == "body":
            h = json.loads(b[:-8])
            self.tensors = h["tensors"]
            self.n_records = len(self.tensors) + (1 if h.get("logits", {}).get("vocab", 0) else 0)
            self.on_part("header", -1, self.pos)
            self.state = "tag"
        elif self.state == "tag":  # a record's tag and index, or the trailer's tag and count
            tag, self.index = struct.unpack_from("<II", b)
            self.state = "trailer" if tag == 0x444E454C else "lens"
        elif self.state == "lens":
            _raw, stored = struct.unpack_from("<QQ", b)
            self.skip, self.state = stored, "payload" if stored else "hash"
        elif self.state == "hash":
            t = self.tensors[self.index] if self.index < len(self.tensors) else None
            self.on_part(t["name"] if t else "logits", t["layer"] if t else -1, self.pos)
            self.state = "tag"
        elif self.state == "trailer":
            self.on_part("trailer", -1, self.pos)
            self.state = "done"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--fingerprint", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--zstd", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ids = [rng.randrange(args.vocab) for _ in range(args.tokens)]
    body = json.dumps({"prompt": ids, "model_fingerprint": args.fingerprint, "format_version": 1,
                       "bf16": args.bf16, "zstd": args.zstd})
    u = urllib.parse.urlparse(args.url)
    rows = []
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    conn.request("POST", "/v1/prefill", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"{args.url} answered {resp.status}: {resp.read()[:500]!r}")
    walker = Walker(lambda name, layer, end: rows.append(
        {"t_s": f"{time.monotonic() - t0:.6f}", "part": name, "layer": layer, "bytes": end}))
    first = True
    while True:
        data = resp.read1(1 << 20)
        if not data:
            break
        if first:
            rows.append({"t_s": f"{time.monotonic() - t0:.6f}", "part": "first_byte", "layer": -1, "bytes": 0})
            first = False
        walker.feed(data)
    if walker.state != "done":
        sys.exit("the stream ended before its trailer")
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, ["t_s", "part", "layer", "bytes"])
        w.writeheader()
        w.writerows(rows)
    print(f"{args.out}: {rows[-1]['bytes']} bytes, last byte after {rows[-1]['t_s']} s")


if __name__ == "__main__":
    main()
