"""Train the embedded demo model (models/demo/) with transformers' own kimi_linear classes, or the same-size
softmax-attention baseline (--arch llama), on the tinyshakespeare training split with the fixture BPE tokenizer.

    python3 tools/train_demo.py --arch kimi --steps 800 --budget-s 480 --out models/demo \
        --fixtures tests/golden/demo
    python3 tools/train_demo.py --arch llama --steps 800 --budget-s 480 --out .scratch/llama

The learning-rate schedule is by step (warmup + cosine), so both architectures see the same tokens in the same
order; --budget-s only stops a run that would overrun its wall-clock slot. The best checkpoint by validation
loss is saved in bf16 (save_pretrained), reloaded, and evaluated in float32 with TF32 off.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "golden"))
import common  # noqa: E402
from make_tokenizer_fixtures import SPLIT  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

EOS = "<|endoftext|>"


def kimi_config(vocab, eos_id, ctx):
    from transformers import AutoConfig

    n_layers = 8
    types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n_layers)]
    return AutoConfig.for_model(
        "kimi_linear", vocab_size=vocab, hidden_size=256, num_hidden_layers=n_layers, hidden_act="silu",
        rms_norm_eps=1e-5, initializer_range=0.02, tie_word_embeddings=False,
        linear_num_heads=4, linear_head_dim=64, linear_conv_kernel_dim=4,
        num_attention_heads=4, num_key_value_heads=4, q_lora_rank=None, kv_lora_rank=128,
        qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64, mla_use_nope=True,
        intermediate_size=704, moe_intermediate_size=128, num_local_experts=8, num_experts_per_tok=2,
        n_shared_experts=1, layer_types=types, mlp_layer_types=["dense"] * n_layers,
        max_position_embeddings=4 * ctx, bos_token_id=None, eos_token_id=eos_id, pad_token_id=eos_id)


def llama_config(vocab, eos_id, ctx):
    from transformers import AutoConfig

    return AutoConfig.for_model(
        "llama", vocab_size=vocab, hidden_size=256, num_hidden_layers=8, num_attention_heads=4,
        num_key_value_heads=4, intermediate_size=768, hidden_act="silu", rms_norm_eps=1e-5,
        initializer_range=0.02, tie_word_embeddings=False, max_position_embeddings=4 * ctx,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=eos_id)


def add_dropout(model, p):
    """Training-only dropout on the embeddings and on every mixer / MLP branch output (forward hooks, so the
    architecture and the saved checkpoint stay transformers' own; inactive under model.eval())."""
    if p <= 0:
        return

    def drop(module, args, out):
        if not module.training:
            return out
        if isinstance(out, tuple):
            return (F.dropout(out[0], p, True),) + tuple(out[1:])
        return F.dropout(out, p, True)
    model.get_input_embeddings().register_forward_hook(drop)
    for layer in model.base_model.layers:
        for name in ("self_attn", "linear_attn", "mlp", "block_sparse_moe"):
            sub = getattr(layer, name, None)
            if isinstance(sub, torch.nn.Module):
                sub.register_forward_hook(drop)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


@torch.no_grad()
def mean_nll(model, ids, ctx, dev, autocast):
    """Mean next-token NLL (nats) over `ids` in non-overlapping input windows of ctx tokens; every token but the
    first is predicted exactly once. Returns (total nats, number of predictions)."""
    total, count = 0.0, 0
    for s in range(0, len(ids) - 1, ctx):
        x = torch.tensor(ids[s:s + ctx], device=dev)[None]
        y = torch.tensor(ids[s + 1:s + ctx + 1], device=dev)
        x = x[:, :len(y)]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x, use_cache=False).logits[0]
        total += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        count += len(y)
    return total, count


def train(args, model, train_ids, val_ids, dev):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    data = torch.tensor(train_ids, dtype=torch.long)
    g = torch.Generator().manual_seed(args.seed)
    val_sub = val_ids[:args.val_tokens]
    best = (float("inf"), -1, None)
    history = []
    t0 = time.time()
    tokens_seen = 0
    done = 0
    for step in range(args.steps):
        if time.time() - t0 > args.budget_s:
            print(f"[{args.arch}] wall-clock budget reached at step {step}", flush=True)
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        starts = torch.randint(0, len(data) - args.ctx - 1, (args.batch,), generator=g)
        batch = torch.stack([data[s:s + args.ctx + 1] for s in starts.tolist()]).to(dev, non_blocking=True)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += args.batch * args.ctx
        done = step + 1
        last = step == args.steps - 1
        if step % args.eval_every == 0 or last:
            model.eval()
            tot, cnt = mean_nll(model, val_sub, args.ctx, dev, autocast=True)
            val = tot / cnt
            el = time.time() - t0
            history.append({"step": step, "train_loss": float(loss), "val_loss": val, "elapsed_s": el})
            print(f"[{args.arch}] step {step:5d} lr {opt.param_groups[0]['lr']:.2e} train {float(loss):.4f} "
                  f"val {val:.4f}  {tokens_seen / el:,.0f} tok/s  mem {torch.cuda.max_memory_allocated() / 2**30:.1f}"
                  f" GiB", flush=True)
            if val < best[0]:
                best = (val, step, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
    elapsed = time.time() - t0
    return best, history, done, tokens_seen, elapsed


def write_tokenizer_files(tok_dir, out):
    shutil.copy(os.path.join(tok_dir, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    shutil.copy(os.path.join(tok_dir, "tokenizer_config.json"), os.path.join(out, "tokenizer_config.json"))


@torch.no_grad()
def write_fixtures(model, tok, val_text, fix_dir, ctx):
    """tests/golden/demo: logits for two validation prompts, greedy ids, and a one-window NLL."""
    import transformers

    os.makedirs(fix_dir, exist_ok=True)
    val_ids = tok.encode(val_text).ids
    cases = []
    for name, start, n in (("val64", 100, 64), ("val300", 5000, 300)):
        ids = val_ids[start:start + n]
        x = torch.tensor([ids], device=model.device)
        lg = model(input_ids=x, use_cache=False).logits[0].float().cpu().numpy()
        common.save_npy(os.path.join(fix_dir, f"{name}.logits.npy"), lg)
        new = common.greedy(model, ids, 16)
        cases.append({"name": name, "prompt_ids": ids, "prompt_text": tok.decode(ids), "logits": f"{name}.logits.npy",
                      "greedy_ids": new, "greedy_text": tok.decode(new), "hidden_states": None})
    start = val_text.index("\n", 2000) + 1
    snippet = val_text[start:start + 4096]
    snippet = snippet[:snippet.rindex("\n") + 1]
    with open(os.path.join(fix_dir, "val_snippet.txt"), "w", encoding="utf-8") as f:
        f.write(snippet)
    ids = tok.encode(snippet).ids
    x = torch.tensor([ids], device=model.device)
    logits = model(input_ids=x, use_cache=False).logits[0].float()
    nll = float(F.cross_entropy(logits[:-1], x[0, 1:], reduction="mean"))
    common.write_json(os.path.join(fix_dir, "eval.json"), {
        "text_file": "val_snippet.txt", "n_tokens": len(ids), "n_chars": len(snippet), "nats_per_token": nll,
        "window": len(ids), "notes": "the snippet tokenized as one sequence (no BOS), one forward pass; targets "
        "are tokens 1..N-1; model loaded from models/demo bf16 weights, computed in float32 on CUDA, TF32 off"})
    common.write_json(os.path.join(fix_dir, "cases.json"), {
        "model_type": model.config.model_type, "model_dir": "models/demo",
        "transformers_version": transformers.__version__, "torch_version": torch.__version__,
        "device": common.gpu_name(), "weights_dtype": "bfloat16", "compute_dtype": "float32",
        "vocab_size": model.config.vocab_size,
        "notes": "Prompts are slices of the tokenized validation split. Logits: one full forward pass "
                 "(use_cache=False, eager attention) of models/demo, its bf16 files loaded as float32 "
                 "(from_pretrained(dtype=float32)), CUDA, TF32 off. greedy_ids: generate(do_sample=False, max_new_tokens=16), eos disabled.",
        "cases": cases})
    print(f"demo fixtures: snippet {len(snippet)} chars / {len(ids)} tokens, NLL {nll:.4f} nats/token")
    return nll


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", choices=["kimi", "llama"], default="kimi")
    ap.add_argument("--data", default=".scratch/data/tinyshakespeare.txt")
    ap.add_argument("--tokenizer", default="tests/golden/tokenizer/bpe")
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--fixtures", default=None, help="write the demo golden fixtures here (kimi only)")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--budget-s", type=float, default=480)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--val-tokens", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dropout", type=float, default=0.0, help="training-only dropout on branch outputs")
    args = ap.parse_args()

    from tokenizers import Tokenizer
    import transformers

    dev = common.device()
    torch.manual_seed(args.seed)
    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    text = open(args.data, encoding="utf-8").read()
    n_train = int(len(text) * SPLIT)
    train_text, val_text = text[:n_train], text[n_train:]
    train_ids, val_ids = tok.encode(train_text).ids, tok.encode(val_text).ids
    eos_id = tok.token_to_id(EOS)
    vocab = tok.get_vocab_size()
    print(f"[{args.arch}] train {len(train_ids)} tokens, val {len(val_ids)} tokens ({len(val_text)} chars), "
          f"vocab {vocab}, eos {eos_id}; transformers {transformers.__version__}, {common.gpu_name()}", flush=True)

    cfg = (kimi_config if args.arch == "kimi" else llama_config)(vocab, eos_id, args.ctx)
    model = common.model_from_config(cfg, attn="sdpa").to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    add_dropout(model, args.dropout)
    print(f"[{args.arch}] {n_params:,} parameters; config: {cfg.to_json_string(use_diff=False)}", flush=True)

    torch.backends.cuda.matmul.allow_tf32 = True  # training only; the evaluation below is strict fp32
    (best_val, best_step, best_sd), history, steps_done, tokens, elapsed = train(args, model, train_ids,
                                                                                  val_ids, dev)
    print(f"[{args.arch}] trained {steps_done} steps, {tokens:,} tokens in {elapsed:.0f} s "
          f"({tokens / elapsed:,.0f} tok/s); best val (subset, bf16 autocast) {best_val:.4f} at step {best_step}",
          flush=True)

    model.load_state_dict(best_sd)
    shutil.rmtree(args.out, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(args.out)
    write_tokenizer_files(args.tokenizer, args.out)
    del model, best_sd
    torch.cuda.empty_cache()

    # Everything below is measured on the saved bf16 weights, in float32, TF32 off.
    common.strict_fp32()
    ref = common.load_model(args.out, torch.float32, attn="eager").to(dev).eval()  # bf16 files -> fp32, exact
    common.disable_eos(ref, eos_id)
    tot, cnt = mean_nll(ref, val_ids, args.ctx, dev, autocast=False)
    val_nats = tot / cnt
    val_bpc = tot / math.log(2) / len(val_text)
    print(f"[{args.arch}] RESULT full validation split: {val_nats:.4f} nats/token over {cnt} predictions, "
          f"{val_bpc:.4f} bits/char ({len(val_text)} chars)", flush=True)

    summary = {"arch": args.arch, "n_params": n_params, "steps": steps_done, "tokens": tokens,
               "train_seconds": elapsed, "tokens_per_s": tokens / elapsed, "best_step": best_step,
               "val_nats_per_token": val_nats, "val_bits_per_char": val_bpc, "val_predictions": cnt,
               "ctx": args.ctx, "batch": args.batch, "lr": args.lr, "warmup": args.warmup, "dropout": args.dropout,
               "device": common.gpu_name(), "date": time.strftime("%Y-%m-%d"),
               "transformers_version": transformers.__version__, "torch_version": torch.__version__,
               "history": history}
    if args.fixtures and args.arch == "kimi":
        summary["snippet_nats_per_token"] = write_fixtures(ref, tok, val_text, args.fixtures, args.ctx)

    prompt = tok.encode("ROMEO:").ids
    x = torch.tensor([prompt], device=dev)
    torch.manual_seed(0)
    sample = ref.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True, temperature=0.8,
                          top_k=50, max_new_tokens=300)[0].tolist()
    summary["sample_ROMEO"] = tok.decode(sample)
    print(f"[{args.arch}] sample (temperature 0.8, top-k 50):\n{summary['sample_ROMEO']}\n", flush=True)
    common.write_json(os.path.join(args.out, "training.json"), summary)


if __name__ == "__main__":
    main()
