#!/usr/bin/env python3
"""transformers' speed on a model folder, measured the way bench/cuda/models/model_speed.cpp measures linfer.

    python3 tools/hf_model_speed.py MODEL_DIR [PROMPT=512] [GEN=128] [REPS=3] [BATCH=16]

On a GPU machine with torch and transformers (tools/gpu_check.sh runs it beside gpu_model_speed):
  ppN      one forward over N random tokens from an empty cache (use_cache=True, last position's logits);
  tgN      generate() from a 1-token prompt, N new tokens, greedy, EOS off: N forwards of one token each;
  tgN x B  the same for B sequences at once.
Times are wall clock around each run with torch.cuda.synchronize() on both sides; one untimed warm-up,
then the median of REPS. Weights bf16, activations bf16 (transformers' usual way to run these models).
The folder is loaded with from_pretrained when its tensor names load exactly; otherwise (names
transformers does not map) the same config is built with random weights, which is as fast. The first
lines say which, and which kernel path the linear-attention layers take: flash-linear-attention (fla)
and causal-conv1d when importable, else transformers' own torch fallback.
Prints markdown rows like gpu_model_speed's.
"""
import importlib.util
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402


def load(path):
    try:
        model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, output_loading_info=True)
        bad = {k: len(v) for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys")}
        if not bad:
            return model, "from_pretrained (the folder's weights)"
        why = f"from_pretrained left {bad} tensors unloaded"
    except Exception as e:  # noqa: BLE001 — fall back below, and say why
        why = f"from_pretrained failed: {type(e).__name__}: {str(e)[:200]}"
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("cuda"):  # initialise on the GPU: a 1B model's random init on the CPU takes long
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    return model, f"from_config, random weights ({why})"


def timed(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    args = [int(a) for a in sys.argv[2:6]]
    prompt, gen, reps, batch = args + [512, 128, 3, 16][len(args):]
    dev = torch.device("cuda")
    paths = {name: importlib.util.find_spec(name) is not None for name in ("fla", "causal_conv1d")}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name(0)}; "
          f"fla importable: {paths['fla']}, causal_conv1d importable: {paths['causal_conv1d']}")
    model, how = load(path)
    model = model.to(dev).eval()
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.do_sample = None, 0, False
    arch = model.config.model_type
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{arch}: {n_params / 1e6:.1f} M parameters, loaded by {how}")
    V = model.config.vocab_size
    g = torch.Generator(device=dev).manual_seed(1)

    def ids(b, n):
        return torch.randint(3, V, (b, n), device=dev, generator=g)

    print(f"| model | params | engine | test | tokens/s (median of {reps}) |\n|---|---|---|---|---|")
    rows = []

    @torch.no_grad()
    def prefill():
        model(input_ids=ids(1, prompt), use_cache=True, logits_to_keep=1)

    @torch.no_grad()
    def decode(b):
        x = ids(b, 1)
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=gen,
                             min_new_tokens=gen, do_sample=False, use_cache=True)
        assert out.shape[1] == gen + 1, out.shape

    for name, fn, tokens in ((f"pp{prompt}", prefill, prompt), (f"tg{gen}", lambda: decode(1), gen),
                             (f"tg{gen} x {batch}", lambda: decode(batch), gen * batch)):
        try:
            rate = f"{tokens / timed(fn, reps):.1f}"
        except Exception as e:  # noqa: BLE001 — report and go on to the next test
            rate = f"failed: {type(e).__name__}: {str(e)[:160]}"
        print(f"| {arch} | {n_params / 1e6:.1f} M | transformers bf16 | {name} | {rate} |", flush=True)


if __name__ == "__main__":
    main()
