"""Shared helpers for the golden-fixture and demo-model scripts (run on a GPU machine with transformers).

Everything here is about producing *reference* numbers: float32 on CUDA with TF32 off, models loaded
back from the bf16 checkpoint that was written, so the C++ engine and the reference read the same bytes.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def strict_fp32():
    """The reference precision: no TF32 anywhere, deterministic kernels where torch has them."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def device():
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: the fixtures must be computed on a GPU machine")
    return torch.device("cuda")


def load_model(path, dtype, attn="eager"):
    """from_pretrained with the v5 argument name, falling back to the v4 one; fails on missing keys."""
    from transformers import AutoModelForCausalLM

    kwargs = dict(attn_implementation=attn, output_loading_info=True)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    except TypeError:
        model, info = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, **kwargs)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise RuntimeError(f"{path}: loading was not exact: {bad}")
    return model


def model_from_config(cfg, attn="eager"):
    from transformers import AutoModelForCausalLM

    # float32 explicitly: buffers such as the rotary inv_freq are then computed in float32, never rounded.
    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=torch.float32)
    except (TypeError, ValueError) as e:
        print(f"  from_config(attn_implementation={attn!r}, dtype=float32) refused ({e}); using the defaults")
        model = AutoModelForCausalLM.from_config(cfg)
    if next(model.parameters()).dtype != torch.float32:
        raise RuntimeError(f"from_config built a {next(model.parameters()).dtype} model, expected float32")
    return model


def disable_eos(model, pad_id):
    """generate() must run the full max_new_tokens: the C++ tests compare all of them."""
    gc = model.generation_config
    gc.eos_token_id = None
    gc.pad_token_id = pad_id
    gc.do_sample = False
    for k in ("temperature", "top_p", "top_k"):
        if hasattr(gc, k):
            setattr(gc, k, None)


@torch.no_grad()
def greedy(model, ids, n_new):
    """Greedy continuation via generate() (prefill in chunk form, decode in recurrent form)."""
    x = torch.tensor([ids], device=model.device)
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                         max_new_tokens=n_new, use_cache=True)
    new = out[0, len(ids):].tolist()
    if len(new) != n_new:
        raise RuntimeError(f"generate stopped after {len(new)} of {n_new} tokens")
    return new


@torch.no_grad()
def greedy_nocache(model, ids, n_new):
    """The same continuation by full forward passes: a cross-check of the decode path."""
    seq = list(ids)
    for _ in range(n_new):
        x = torch.tensor([seq], device=model.device)
        seq.append(int(model(input_ids=x, use_cache=False).logits[0, -1].argmax()))
    return seq[len(ids):]


def save_npy(path, arr):
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def gpu_name():
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
