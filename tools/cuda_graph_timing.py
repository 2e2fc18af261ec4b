"""Timing of GPU work from Python the way linfer's CUDA benchmarks time theirs (tools/sdpa_vs_chunked.py,
tools/fla_side_by_side.py): the calls captured into one CUDA graph after a warm-up on a side stream (so
Python's launch cost, 90-150 us a kernel, stays out), the graph replayed `reps` times, the median per call."""
import torch


def median_ms(run, reps):
    """Median over `reps` runs of run() between two CUDA events, in ms."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[reps // 2]


def graph_ms_per_call(calls, reps=15, warmup=2):
    """Median ms per call of a CUDA graph holding each closure of `calls` once (the first `warmup` run
    outside the capture first: Triton compiles and autotunes there)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for c in calls[:warmup]:
            c()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for c in calls:
            c()
    graph.replay()
    return median_ms(graph.replay, reps) / len(calls)
