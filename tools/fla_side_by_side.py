#!/usr/bin/env python3
"""flash-linear-attention's recurrent decode and chunked prefill kernels timed on this GPU the way gpu_decode
and gpu_prefill time linfer's, so that one device call measures both side by side (tools/gpu_check.sh runs it
where fla's source is carried: FLA=<folder holding fla/ and einops/>, default .device/py; never committed).

Decode: one token for each of B sequences, 32 heads x 128 x 128, float32 state, bf16 q / k / v, float32 g, q/k
L2 norm in the kernel; a CUDA graph of max(20, sets) calls replayed 15 times, the median per call. *hbm*: each
call reads another set of B states out of a 1 GiB pool; *same*: every call the same B states. KDA runs
fused_recurrent_kda_fwd in place on the pool through ssm_state_indices (how vLLM drives it); GDN's
fused_recurrent_gated_delta_rule_fwd has no in-place form: it reads a [B, 32, 128, 128] state set and writes
the final states to a new tensor. TB/s = state read + written once, as gpu_decode counts it.

Prefill: chunk_gated_delta_rule / chunk_kda, one sequence of T tokens, bf16 q / k / v / beta, float32 g and
state, q/k L2 norm in the kernel, initial and final state; CUDA graph where capture works, else eager calls
(said in the table); median of 5 after a warm-up. --kernels T: where a prefill call's time goes, kernel by
kernel (torch.profiler's CUDA time over 5 eager calls, per call).
    PYTHONPATH=.device/py python3 tools/fla_side_by_side.py [--decode B ...] [--prefill T ...] [--kernels T ...]"""
import argparse

import torch
from cuda_graph_timing import graph_ms_per_call, median_ms
from fla.ops.gated_delta_rule import chunk_gated_delta_rule
from fla.ops.gated_delta_rule.fused_recurrent import fused_recurrent_gated_delta_rule_fwd
from fla.ops.kda import chunk_kda
from fla.ops.kda.fused_recurrent import fused_recurrent_kda_fwd

H, D, POOL = 32, 128, 512
STATE_BYTES = H * D * D * 4


def decode_inputs(B, per_key):
    bf = dict(device="cuda", dtype=torch.bfloat16)
    q, k, v = (torch.randn(B, 1, H, D, **bf) for _ in range(3))
    g_shape = (B, 1, H, D) if per_key else (B, 1, H)
    g = (torch.randn(*g_shape, device="cuda") * 0.5 - 1.0).clamp(max=0.0)
    beta = (torch.rand(B, 1, H, device="cuda") * 0.2 + 0.4).to(torch.bfloat16)
    return q, k, v, g, beta


def kda_decode_us(pool, B, hbm):
    q, k, v, g, beta = decode_inputs(B, True)
    out = torch.empty_like(v)
    n_sets = max(2, POOL // B) if hbm else 1
    perm = torch.randperm(POOL, device="cuda", dtype=torch.int32)[: n_sets * B].view(n_sets, B)
    sets = [perm[i].contiguous() for i in range(n_sets)]

    def call(i):
        return lambda: fused_recurrent_kda_fwd(q, k, v, g, beta, initial_state=pool, inplace_final_state=True,
                                               ssm_state_indices=sets[i], use_qk_l2norm_in_kernel=True, out=out)

    return graph_ms_per_call([call(i % n_sets) for i in range(max(20, n_sets))]) * 1e3


def gdn_decode_us(pool, B, hbm):
    q, k, v, g, beta = decode_inputs(B, False)
    n_sets = max(2, POOL // B) if hbm else 1
    states = pool.view(POOL // B, B, H, D, D)

    def call(i):
        return lambda: fused_recurrent_gated_delta_rule_fwd(q, k, v, g=g, beta=beta, scale=D ** -0.5,
                                                            initial_state=states[i], output_final_state=True,
                                                            use_qk_l2norm_in_kernel=True)

    return graph_ms_per_call([call(i % n_sets) for i in range(max(20, n_sets))]) * 1e3


def prefill_call(T, per_key):
    bf = dict(device="cuda", dtype=torch.bfloat16)
    q, k, v = (torch.randn(1, T, H, D, **bf) for _ in range(3))
    g = torch.randn(1, T, H, *((D,) if per_key else ()), device="cuda") * 0.02 - 0.1
    beta = (torch.rand(1, T, H, device="cuda") * 0.2 + 0.4).to(torch.bfloat16)
    h0 = torch.randn(1, H, D, D, device="cuda") * 0.1
    fn = chunk_kda if per_key else chunk_gated_delta_rule

    return lambda: fn(q, k, v, g, beta, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)


def prefill_ms(T, per_key):
    call = prefill_call(T, per_key)
    try:
        return graph_ms_per_call([call], reps=5, warmup=1), "graph"
    except Exception as e:  # capture refused (a host sync inside): time eager calls
        print(f"(fla {'chunk_kda' if per_key else 'chunk_gated_delta_rule'} T = {T}: no CUDA graph: "
              f"{type(e).__name__}; eager calls timed)")
        torch.cuda.synchronize()
        call()
        return median_ms(call, 5), "eager"


def kernel_split(T, per_key, calls=5):
    """[(kernel name, ms per call)] of one prefill call, largest first."""
    call = prefill_call(T, per_key)
    call()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
    per = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            per[e.name] = per.get(e.name, 0.0) + e.device_time / 1e3 / calls
    return sorted(per.items(), key=lambda kv: -kv[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decode", type=int, nargs="*", default=[1, 8, 64, 256])
    ap.add_argument("--prefill", type=int, nargs="*", default=[8192, 32768])
    ap.add_argument("--kernels", type=int, nargs="*", default=[])
    args = ap.parse_args()
    import fla
    print(f"flash-linear-attention {fla.__version__} on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.decode:
        pool = torch.randn(POOL, H, D, D, device="cuda") * 0.5  # 1 GiB of float32 states
        print("fla recurrent decode, 32 heads x 128 x 128, us per call in a CUDA graph (state TB/s)")
        print("| kernel | B | hbm us | hbm TB/s | same us | same TB/s |")
        print("|---|---|---|---|---|---|")
        for name, fn in (("fla gdn", gdn_decode_us), ("fla kda", kda_decode_us)):
            for B in args.decode:
                hbm, same = fn(pool, B, True), fn(pool, B, False)
                tb = lambda us: 2.0 * B * STATE_BYTES / (us * 1e-6) / 1e12
                print(f"| {name} | {B} | {hbm:.1f} | {tb(hbm):.2f} | {same:.1f} | {tb(same):.2f} |")
        del pool
    if args.prefill:
        print("fla chunked prefill, one sequence, 32 heads x 128 x 128, bf16 inputs, ms per call")
        print("| kernel | T | ms | timed as |")
        print("|---|---|---|---|")
        for name, per_key in (("fla chunk_gated_delta_rule", False), ("fla chunk_kda", True)):
            for T in args.prefill:
                ms, how = prefill_ms(T, per_key)
                print(f"| {name} | {T} | {ms:.3f} | {how} |")
    for T in args.kernels:
        for name, per_key in (("chunk_gated_delta_rule", False), ("chunk_kda", True)):
            split = kernel_split(T, per_key)
            print(f"fla {name}, T = {T}, kernel by kernel (profiler, eager, ms per call; total "
                  f"{sum(ms for _, ms in split):.3f})")
            for kname, ms in split:
                print(f"  {ms:8.3f}  {kname[:110]}")


if __name__ == "__main__":
    main()
