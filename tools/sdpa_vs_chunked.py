#!/usr/bin/env python3
"""From which prompt length the chunked GDN / KDA prefill beats softmax attention on the same GPU: one layer,
32 heads x 128, one sequence; PyTorch's scaled_dot_product_attention (causal) on bf16 inputs (its flash kernel)
and on float32 inputs, replayed from a CUDA graph (median of 20), against linfer's chunked kernels as
`gpu_prefill T MIXER chunked` prints them (3xTF32 on float32 inputs, the models' arithmetic, and bf16 on bf16
q / k / v, as SDPA bf16 gets them). Run by tools/gpu_check.sh
where python3 has torch:
    python3 tools/sdpa_vs_chunked.py build-gpu/gpu_prefill [T ...]"""
import subprocess
import sys

import torch
import torch.nn.functional as F
from cuda_graph_timing import graph_ms_per_call


def sdpa_ms(T, dtype, reps=20):
    q, k, v = (torch.randn(1, 32, T, 128, device="cuda", dtype=dtype) for _ in range(3))
    return graph_ms_per_call([lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)], reps, warmup=3)


def chunked_ms(binary, T, mixer):
    """(3xTF32 ms, bf16-input ms) from gpu_prefill's row | MIXER | T | tf32 | 3xtf32 | bf16 | bf16 in | ..."""
    out = subprocess.run([binary, str(T), mixer, "chunked"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 5 and cells[0] == mixer.upper() and cells[1] == str(T):
            return float(cells[3]), float(cells[5])
    raise SystemExit(f"{binary}: no {mixer} row for T = {T} in:\n{out}")


def main():
    binary = sys.argv[1]
    lengths = [int(t) for t in sys.argv[2:]] or [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    print(f"Chunked prefill vs SDPA, one layer, 32 heads x 128 ({torch.cuda.get_device_name()}, torch "
          f"{torch.__version__}); ms per call")
    print("| T | SDPA bf16 | SDPA f32 | GDN 3xTF32 | GDN bf16 | KDA 3xTF32 | KDA bf16 |")
    print("|---|---|---|---|---|---|---|")
    first = {}
    for T in lengths:
        s16, s32 = sdpa_ms(T, torch.bfloat16), sdpa_ms(T, torch.float32)
        g3, g16 = chunked_ms(binary, T, "gdn")
        k3, k16 = chunked_ms(binary, T, "kda")
        print(f"| {T} | {s16:.3f} | {s32:.3f} | {g3:.3f} | {g16:.3f} | {k3:.3f} | {k16:.3f} |")
        for name, ms in (("GDN 3xTF32", g3), ("GDN bf16", g16), ("KDA 3xTF32", k3), ("KDA bf16", k16)):
            if ms <= s16 and name not in first:
                first[name] = T
    for name in ("GDN 3xTF32", "GDN bf16", "KDA 3xTF32", "KDA bf16"):
        print(f"{name} beats SDPA bf16 from T = {first[name]}" if name in first else
              f"{name}: slower than SDPA bf16 at every length tried")


if __name__ == "__main__":
    main()
