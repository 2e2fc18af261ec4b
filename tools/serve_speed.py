#!/usr/bin/env python3
"""Serving speed of `linfer serve` on one device, for docs/gpu.md and docs/prefill-as-a-service.md.

  tools/serve_speed.py LINFER MODEL_DIR --device cuda --prefill 4096,16384 --decode 1,8,32

--prefill: a prefill node (`serve --role prefill`) is started and POST /v1/prefill sent one prompt of
each length (random ids, float32 state, no zstd), after one short warm-up request: time to the first
and the last byte of the streamed state, bytes, prompt tokens / time to last byte.
--decode: a plain node (`serve --max-seqs max(C)`) answers C completions at once (prompt --decode-prompt
tokens, --decode-tokens generated each, ignore_eos, greedy), after a warm-up round of the same shape (C
prompts of that length, 8 tokens each), so that the server has run those shapes once: generated tokens /
wall time, the mean time per output token of one request, and from the server's /metrics the mean time of its
iterations in that round and of the model's forward within them (what the server adds to a forward is the
difference). Prints a Markdown table row per measurement.
Only the standard library (the GPU machine's python3 has nothing else this needs).
"""
import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def start(linfer, args, log_path):
    log = open(log_path, "w")
    p = subprocess.Popen([linfer] + args + ["--port", "0"], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 600
    port = None
    while time.time() < deadline:
        if p.poll() is not None:
            sys.exit(f"serve_speed: linfer exited ({p.returncode}); log: {log_path}")
        text = open(log_path).read()
        if port is None:
            m = re.search(r"listening on http://[0-9.]+:(\d+)", text)
            port = int(m.group(1)) if m else None
        if port and "ready on" in text:
            return p, port
        time.sleep(0.1)
    p.kill()
    sys.exit(f"serve_speed: linfer did not get ready; log: {log_path}")


def stop(p):
    p.terminate()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=900)


def prefill(port, ids, fp, version):
    t0 = time.perf_counter()
    with post(port, "/v1/prefill", {"prompt": ids, "model_fingerprint": fp, "format_version": version}) as r:
        first = r.read(1)
        t_first = time.perf_counter() - t0
        n = len(first)
        while chunk := r.read(1 << 20):
            n += len(chunk)
    return t_first, time.perf_counter() - t0, n


def identity(port):
    try:
        post(port, "/v1/prefill", {"prompt": [1], "model_fingerprint": "?", "format_version": 0})
    except urllib.error.HTTPError as e:  # 409 names what the node runs
        return e.headers["X-Linfer-Model-Fingerprint"], int(e.headers["X-Linfer-State-Version"])
    sys.exit("serve_speed: the prefill node accepted a wrong fingerprint")


def steps(port):  # (forward seconds, iteration seconds, iterations) so far, from the server's histograms
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode()
    def value(name):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0
    return value("linfer_forward_seconds_sum"), value("linfer_iteration_seconds_sum"), value("linfer_iteration_seconds_count")


def complete(port, ids, n, out, i):
    t0 = time.perf_counter()
    with post(port, "/v1/completions", {"prompt": ids, "max_tokens": n, "temperature": 0, "ignore_eos": True}) as r:
        usage = json.load(r)["usage"]
    out[i] = (time.perf_counter() - t0, usage["completion_tokens"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("linfer")
    ap.add_argument("model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="linfer --threads (0: its default)")
    ap.add_argument("--prefill", default="", help="prompt lengths, comma-separated")
    ap.add_argument("--decode", default="", help="concurrencies, comma-separated")
    ap.add_argument("--decode-prompt", type=int, default=64)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--log", default="/tmp/serve_speed")
    a = ap.parse_args()
    rng = random.Random(7)
    common = (["--threads", str(a.threads)] if a.threads else []) + ["serve", "--model", a.model, "--device", a.device]
    vocab = json.load(open(f"{a.model}/config.json"))["vocab_size"]

    if a.prefill:
        lengths = [int(x) for x in a.prefill.split(",")]
        p, port = start(a.linfer, common + ["--role", "prefill", "--max-context", str(max(lengths) + 1)],
                        f"{a.log}_prefill_{a.device}.log")
        fp, version = identity(port)
        prefill(port, [rng.randrange(vocab) for _ in range(64)], fp, version)  # warm-up
        for n in lengths:
            ids = [rng.randrange(vocab) for _ in range(n)]
            t_first, t_last, nbytes = prefill(port, ids, fp, version)
            print(f"| prefill node | {a.device} | {n} | {n / t_last:.0f} | {t_first * 1e3:.0f} | {t_last * 1e3:.0f} "
                  f"| {nbytes / 2**20:.1f} |", flush=True)
        stop(p)

    if a.decode:
        cs = [int(x) for x in a.decode.split(",")]
        ctx = a.decode_prompt + a.decode_tokens
        p, port = start(a.linfer, common + ["--max-seqs", str(max(cs)), "--max-context", str(ctx),
                                            "--max-batch-tokens", str(max(512, max(cs)))],
                        f"{a.log}_decode_{a.device}.log")
        def round_of(c, tokens):  # c concurrent completions of fresh random prompts (no prefix-cache hits)
            prompts = [[rng.randrange(vocab) for _ in range(a.decode_prompt)] for _ in range(c)]
            out = [None] * c
            t0 = time.perf_counter()
            th = [threading.Thread(target=complete, args=(port, prompts[i], tokens, out, i)) for i in range(c)]
            for t in th:
                t.start()
            for t in th:
                t.join()
            return out, time.perf_counter() - t0

        for c in cs:
            round_of(c, min(8, a.decode_tokens))  # warm-up of the same shape: prompt length and batch size seen
            f0, i0, n0 = steps(port)
            out, wall = round_of(c, a.decode_tokens)
            f1, i1, n1 = steps(port)
            gen = sum(o[1] for o in out)
            per_tok = sum(o[0] / o[1] for o in out) / c
            its = max(n1 - n0, 1)
            print(f"| serve decode | {a.device} | C = {c} | {gen / wall:.0f} | {per_tok * 1e3:.2f} | {wall:.2f} "
                  f"| {(f1 - f0) / its * 1e3:.3f} / {(i1 - i0) / its * 1e3:.3f} ({n1 - n0:.0f}) |", flush=True)
        stop(p)


if __name__ == "__main__":
    main()
