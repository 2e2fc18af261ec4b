"""Write the tiny-model golden fixtures (tests/golden/<case>/) from Hugging Face transformers.

Run on a GPU machine with transformers 5.x (see docs/golden-fixtures.md):
    python3 tools/golden/make_fixtures.py --out tests/golden

Per case: config.json + bf16 safetensors exactly as save_pretrained wrote them, an alt/ folder with the same
weights under transformers' in-memory (packed) names (kimi_linear: plus Moonshot's published config format),
and cases.json with float32 logits / greedy ids computed on CUDA with TF32 off from the *saved* bf16 weights.
The contract is in docs/golden-fixtures.md.
"""
import argparse
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (sets the offline environment before transformers is imported)

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROMPT_LENGTHS = [1, 63, 64, 65, 320]
HIDDEN_CASE = "len65"
N_NEW = 16
FIRST_NORMAL_ID = 3  # ids 0..2 are pad / bos / eos: prompts never use them
WEIGHT_GAIN = 1.3    # matrices ~ N(0, gain/sqrt(fan_in)): logits std ~1 after the final norm
SPECIAL_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)


def kimi(hidden, lin_heads, lin_dim, mla_heads, nope, rope, v_dim, kv_lora, inter, moe_inter, experts, top_k,
         shared, scaling, layer_types, n_dense):
    n = len(layer_types)
    return dict(
        vocab_size=256, hidden_size=hidden, num_hidden_layers=n, hidden_act="silu", rms_norm_eps=1e-5,
        num_attention_heads=mla_heads, num_key_value_heads=mla_heads, q_lora_rank=None, kv_lora_rank=kv_lora,
        qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=v_dim, mla_use_nope=True,
        linear_num_heads=lin_heads, linear_head_dim=lin_dim, linear_conv_kernel_dim=4,
        intermediate_size=inter, moe_intermediate_size=moe_inter, num_local_experts=experts,
        num_experts_per_tok=top_k, n_shared_experts=shared, routed_scaling_factor=scaling, norm_topk_prob=True,
        n_group=1, topk_group=1,
        layer_types=["linear_attention" if t == "KDA" else "full_attention" for t in layer_types],
        mlp_layer_types=["dense" if i < n_dense else "sparse" for i in range(n)],
        tie_word_embeddings=False, initializer_range=0.1, max_position_embeddings=4096, **SPECIAL_IDS)


def qwen(hidden, heads, kv_heads, head_dim, k_heads, v_heads, k_dim, v_dim, inter, moe_inter, shared_inter,
         experts, top_k, norm_topk, layer_types, mlp_only):
    return dict(
        vocab_size=256, hidden_size=hidden, num_hidden_layers=len(layer_types), hidden_act="silu",
        rms_norm_eps=1e-6, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        linear_num_key_heads=k_heads, linear_num_value_heads=v_heads, linear_key_head_dim=k_dim,
        linear_value_head_dim=v_dim, linear_conv_kernel_dim=4, intermediate_size=inter,
        moe_intermediate_size=moe_inter, shared_expert_intermediate_size=shared_inter, num_experts=experts,
        num_experts_per_tok=top_k, norm_topk_prob=norm_topk, decoder_sparse_step=1, mlp_only_layers=mlp_only,
        layer_types=["linear_attention" if t == "GDN" else "full_attention" for t in layer_types],
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        tie_word_embeddings=False, initializer_range=0.1, max_position_embeddings=4096, **SPECIAL_IDS)


def mamba2(hidden, layers, heads, head_dim, state, groups, chunk, tied):
    return dict(
        vocab_size=256, hidden_size=hidden, num_hidden_layers=layers, num_heads=heads, head_dim=head_dim,
        expand=heads * head_dim // hidden, state_size=state, n_groups=groups, conv_kernel=4, chunk_size=chunk,
        use_bias=False, use_conv_bias=True, rms_norm=True, residual_in_fp32=True, layer_norm_epsilon=1e-5,
        tie_word_embeddings=tied, initializer_range=0.1, **SPECIAL_IDS)


CASES = [
    dict(name="kimi_linear_a", model_type="kimi_linear", seed=101, pattern=["KDA", "KDA", "KDA", "MLA"],
         n_dense=1, alt="packed+moonshot",
         kw=kimi(64, 4, 16, 4, 16, 8, 16, 32, 128, 32, 8, 2, 1, 2.446, ["KDA", "KDA", "KDA", "MLA"], 1)),
    dict(name="kimi_linear_b", model_type="kimi_linear", seed=102, pattern=["MLA", "KDA", "KDA", "KDA", "MLA"],
         n_dense=2, alt="packed+moonshot",
         kw=kimi(64, 2, 32, 2, 32, 16, 32, 32, 96, 16, 8, 3, 2, 1.5, ["MLA", "KDA", "KDA", "KDA", "MLA"], 2)),
    dict(name="qwen3_next_a", model_type="qwen3_next", seed=201, pattern=["GDN", "GDN", "GDN", "ATT"],
         alt="packed",
         kw=qwen(64, 4, 2, 32, 2, 4, 16, 16, 128, 16, 32, 8, 2, True, ["GDN", "GDN", "GDN", "ATT"], [])),
    dict(name="qwen3_next_b", model_type="qwen3_next", seed=202, pattern=["ATT", "GDN", "GDN", "ATT", "GDN"],
         alt="packed", max_shard_size="100KB",
         kw=qwen(64, 4, 2, 16, 2, 4, 32, 16, 96, 16, 32, 8, 3, False, ["ATT", "GDN", "GDN", "ATT", "GDN"],
                 [0, 2])),
    dict(name="mamba2_a", model_type="mamba2", seed=301, pattern=["SSD"] * 3, alt=None,
         kw=mamba2(64, 3, 8, 16, 16, 1, 256, False)),
    dict(name="mamba2_b", model_type="mamba2", seed=302, pattern=["SSD"] * 4, alt=None,
         kw=mamba2(64, 4, 8, 16, 16, 2, 64, True)),
]


def build_config(case):
    from transformers import AutoConfig

    cfg = AutoConfig.for_model(case["model_type"], **case["kw"])
    # Fail loudly where the installed transformers names a field differently from what we asked for.
    for key in ("hidden_size", "num_hidden_layers", "vocab_size", "layer_types", "mlp_layer_types",
                "mlp_only_layers", "n_groups", "tie_word_embeddings"):
        if key in case["kw"] and hasattr(cfg, key) and getattr(cfg, key) != case["kw"][key]:
            raise RuntimeError(f"{case['name']}: config.{key} = {getattr(cfg, key)!r}, asked {case['kw'][key]!r}")
    return cfg


def check_moe(case, cfg, model):
    """The installed transformers must have built the experts / top-k we asked for (field names drift)."""
    import re
    kw = case["kw"]
    want_e = kw.get("num_local_experts", kw.get("num_experts"))
    if want_e is None:
        return
    got = set()
    for k, v in model.state_dict().items():
        m = re.search(r"experts\.(\d+)\.", k)
        if m:
            got.add(int(m.group(1)) + 1)
        elif re.search(r"experts\.(gate_up_proj|down_proj|up_proj|gate_proj)$", k) and v.dim() == 3:
            got.add(v.shape[0])
    if max(got, default=0) != want_e:
        raise RuntimeError(f"{case['name']}: model has {max(got, default=0)} experts, asked {want_e}")
    top_k = next((getattr(cfg, n) for n in ("num_experts_per_tok", "num_experts_per_token")
                  if getattr(cfg, n, None) is not None), None)
    if top_k != kw["num_experts_per_tok"]:
        raise RuntimeError(f"{case['name']}: top-k is {top_k}, asked {kw['num_experts_per_tok']}")


def randomize(model, seed):
    """Give every tensor values that make the numbers interesting: spread logits, varied decays and routing."""
    g = torch.Generator().manual_seed(seed)

    def randn(shape):
        return torch.randn(shape, generator=g, dtype=torch.float32)

    rules = {}
    params = dict(model.named_parameters(remove_duplicate=True))
    buffers = dict(model.named_buffers(remove_duplicate=True))
    sd_names = set(model.state_dict().keys())
    for name, t in list(params.items()) + [(n, b) for n, b in buffers.items() if n in sd_names]:
        if not t.is_floating_point():
            continue
        leaf = name.split(".")[-1]
        with torch.no_grad():
            if leaf == "A_log":  # decay rate exp(A_log) in [0.1, 2]
                v, rule = torch.log(0.1 + 1.9 * torch.rand(t.shape, generator=g)), "log U(0.1,2)"
            elif leaf == "dt_bias":
                v, rule = -1.0 + 0.5 * randn(t.shape), "N(-1,0.5)"
            elif leaf == "e_score_correction_bias":
                v, rule = 0.2 * randn(t.shape), "N(0,0.2)"
            elif name in buffers:
                print(f"  (buffer {name} {tuple(t.shape)} left as initialised)")
                continue
            elif t.dim() >= 2:
                std = WEIGHT_GAIN / math.sqrt(t.shape[-1])
                v, rule = std * randn(t.shape), f"N(0,{WEIGHT_GAIN}/sqrt({t.shape[-1]}))"
            elif "norm" in name:  # around the initial value: 1 for w*x, 0 for zero-centred (1+w)*x
                base = float(t.float().mean())
                v, rule = base + 0.15 * randn(t.shape), f"{base:g}+N(0,0.15)"
            elif leaf == "D":
                v, rule = 1.0 + 0.3 * randn(t.shape), "1+N(0,0.3)"
            elif leaf == "bias":
                v, rule = 0.1 * randn(t.shape), "N(0,0.1)"
            else:
                base = float(t.float().mean())
                v, rule = base + 0.1 * randn(t.shape), f"{base:g}+N(0,0.1) (unrecognised 1-D)"
            t.copy_(v.to(t.dtype))
        rules[name] = (tuple(t.shape), str(t.dtype).replace("torch.", ""), rule)
    return rules


def moonshot_config(case):
    """The published Kimi-Linear config.json layout (1-indexed layer lists, Moonshot's MoE field names)."""
    kw = case["kw"]
    lt = kw["layer_types"]
    return {
        "architectures": ["KimiLinearForCausalLM"],
        "model_type": "kimi_linear",
        "vocab_size": kw["vocab_size"], "hidden_size": kw["hidden_size"],
        "num_hidden_layers": kw["num_hidden_layers"], "hidden_act": "silu", "rms_norm_eps": kw["rms_norm_eps"],
        "initializer_range": kw["initializer_range"],
        "num_attention_heads": kw["num_attention_heads"], "num_key_value_heads": kw["num_key_value_heads"],
        "q_lora_rank": None, "kv_lora_rank": kw["kv_lora_rank"], "qk_nope_head_dim": kw["qk_nope_head_dim"],
        "qk_rope_head_dim": kw["qk_rope_head_dim"], "v_head_dim": kw["v_head_dim"], "mla_use_nope": True,
        "rope_theta": 10000.0, "rope_scaling": None,
        "intermediate_size": kw["intermediate_size"], "moe_intermediate_size": kw["moe_intermediate_size"],
        "first_k_dense_replace": case["n_dense"], "moe_layer_freq": 1,
        "num_experts": kw["num_local_experts"], "num_experts_per_token": kw["num_experts_per_tok"],
        "num_shared_experts": kw["n_shared_experts"], "moe_renormalize": kw["norm_topk_prob"],
        "moe_router_activation_func": "sigmoid", "routed_scaling_factor": kw["routed_scaling_factor"],
        "use_grouped_topk": True, "num_expert_group": 1, "topk_group": 1, "num_nextn_predict_layers": 0,
        "linear_attn_config": {
            "kda_layers": [i + 1 for i, t in enumerate(lt) if t == "linear_attention"],
            "full_attn_layers": [i + 1 for i, t in enumerate(lt) if t == "full_attention"],
            "num_heads": kw["linear_num_heads"], "head_dim": kw["linear_head_dim"], "short_conv_kernel_size": 4,
        },
        "model_max_length": kw["max_position_embeddings"], "tie_word_embeddings": False, "use_cache": True,
        "bos_token_id": kw["bos_token_id"], "eos_token_id": kw["eos_token_id"], "pad_token_id": kw["pad_token_id"],
        "torch_dtype": "bfloat16",
    }


@torch.no_grad()
def logits_of(model, ids):
    x = torch.tensor([ids], device=model.device)
    return model(input_ids=x, use_cache=False).logits[0].float().cpu().numpy()


@torch.no_grad()
def hidden_states_of(model, ids):
    """[n_layers + 1, T, hidden] and, for each entry, what it is (found by comparing with hooked layer outputs)."""
    x = torch.tensor([ids], device=model.device)
    layers = model.base_model.layers
    outs = {}

    def hook(j):
        def fn(module, args, out):
            outs[j] = (out[0] if isinstance(out, tuple) else out)[0].float().cpu().numpy()
        return fn
    handles = [layer.register_forward_hook(hook(j)) for j, layer in enumerate(layers)]
    out = model(input_ids=x, use_cache=False, output_hidden_states=True)
    for h in handles:
        h.remove()
    hs = torch.stack([h[0].float() for h in out.hidden_states]).cpu().numpy()
    n_layers = model.config.num_hidden_layers
    if hs.shape[0] != n_layers + 1:
        raise RuntimeError(f"hidden_states has {hs.shape[0]} entries, expected {n_layers + 1}")
    known = [("token embeddings", model.get_input_embeddings()(x)[0].float().cpu().numpy())]
    known += [(f"output of layer {j} (residual stream)", outs[j]) for j in range(len(layers))]
    known.append(("final norm output (last_hidden_state)",
                  model.base_model(input_ids=x, use_cache=False).last_hidden_state[0].float().cpu().numpy()))
    labels = []
    for e in hs:
        labels.append(next((name for name, ref in known if np.allclose(e, ref, atol=1e-5, rtol=1e-5)),
                           "unidentified"))
    return hs, labels


def save_alt(case, sd, cfg_dir, alt_dir, ref_logits, long_ids, dev):
    """Write alt/: the reloaded bf16 tensors under their in-memory names; check they reproduce the logits."""
    os.makedirs(alt_dir, exist_ok=True)
    from safetensors.torch import save_file
    save_file(sd, os.path.join(alt_dir, "model.safetensors"), metadata={"format": "pt"})
    if case["model_type"] == "kimi_linear":
        common.write_json(os.path.join(alt_dir, "config.json"), moonshot_config(case))
    else:
        shutil.copy(os.path.join(cfg_dir, "config.json"), os.path.join(alt_dir, "config.json"))

    # Hard check: the alt tensors load strictly into the parent's architecture and give the same logits.
    from transformers import AutoConfig
    parent_cfg = AutoConfig.from_pretrained(cfg_dir)
    m = common.model_from_config(parent_cfg)  # float32: load_state_dict converts the bf16 values exactly
    m.load_state_dict(sd, strict=True)
    m = m.to(dev).eval()
    d = float(np.abs(logits_of(m, long_ids) - ref_logits).max())
    if d > 1e-5:
        raise RuntimeError(f"{case['name']}: alt tensors give different logits (max abs diff {d})")
    report = [f"alt tensors reload strictly into the parent model: max|dlogits| = {d:.2e}"]

    # Soft checks: does transformers itself read the alt config / folder the same way?
    try:
        alt_cfg = AutoConfig.from_pretrained(alt_dir)
        for key in ("layer_types", "mlp_layer_types"):
            if getattr(alt_cfg, key, None) != getattr(parent_cfg, key, None):
                raise RuntimeError(f"{key}: {getattr(alt_cfg, key, None)} != {getattr(parent_cfg, key, None)}")
        m2 = common.model_from_config(alt_cfg)
        m2.load_state_dict(sd, strict=True)
        m2 = m2.to(dev).eval()
        d2 = float(np.abs(logits_of(m2, long_ids) - ref_logits).max())
        report.append(f"model built from alt/config.json + alt tensors: max|dlogits| = {d2:.2e}")
    except Exception as e:  # noqa: BLE001 — informational only
        report.append(f"WARNING: model built from alt/config.json failed: {type(e).__name__}: {e}")
    try:
        m3 = common.load_model(alt_dir, torch.float32).to(dev).eval()
        d3 = float(np.abs(logits_of(m3, long_ids) - ref_logits).max())
        report.append(f"from_pretrained(alt/): max|dlogits| = {d3:.2e}")
    except Exception as e:  # noqa: BLE001
        report.append(f"note: from_pretrained(alt/) failed: {type(e).__name__}: {str(e)[:300]}")
    for line in report:
        print("  " + line)
    return report


def make_case(case, out_root, dev):
    import transformers

    name = case["name"]
    print(f"\n=== {name} ({case['model_type']}, pattern {case['pattern']})")
    cfg = build_config(case)
    torch.manual_seed(case["seed"])
    model = common.model_from_config(cfg)
    check_moe(case, cfg, model)
    rules = randomize(model, case["seed"])
    for k, (shape, dt, rule) in rules.items():
        print(f"  {k:60s} {str(shape):18s} {dt:8s} {rule}")
    n_params = sum(p.numel() for p in model.parameters())

    case_dir = os.path.join(out_root, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    model = model.to(torch.bfloat16)
    save_kw = {"max_shard_size": case["max_shard_size"]} if "max_shard_size" in case else {}
    model.save_pretrained(case_dir, **save_kw)
    saved = sorted(os.listdir(case_dir))
    print(f"  saved: {saved}")
    if "max_shard_size" in case and "model.safetensors.index.json" not in saved:
        raise RuntimeError(f"{name}: expected a sharded save, got {saved}")
    for f in saved:  # keep exactly what save_pretrained wrote, but no generation_config (not in the contract)
        if f == "generation_config.json":
            os.remove(os.path.join(case_dir, f))

    # The reference: the saved bf16 checkpoint, loaded back and computed in float32.
    ref_bf16 = common.load_model(case_dir, torch.bfloat16)
    alt_sd = {k: v.detach().to("cpu").clone().contiguous() for k, v in ref_bf16.state_dict().items()}
    saved_sd = model.state_dict()
    for k, v in ref_bf16.state_dict().items():
        if k not in saved_sd or not torch.equal(saved_sd[k].to(v.dtype), v):
            raise RuntimeError(f"{name}: tensor {k} does not reload to the value that was saved")
    if set(saved_sd) != set(ref_bf16.state_dict()):
        raise RuntimeError(f"{name}: reloaded tensor names differ: {set(saved_sd) ^ set(ref_bf16.state_dict())}")
    # The reference loads the bf16 files straight into float32 (exact), so non-persistent buffers (rotary
    # inv_freq) are computed in float32 as an engine would; record how far the bf16-load-then-.float() path is.
    ref = common.load_model(case_dir, torch.float32).to(dev).eval()
    via_bf16 = ref_bf16.float().to(dev).eval()
    common.disable_eos(ref, SPECIAL_IDS["pad_token_id"])

    rng = np.random.RandomState(case["seed"])
    cases, summary = [], []
    long_ids = None
    for T in PROMPT_LENGTHS:
        ids = rng.randint(FIRST_NORMAL_ID, cfg.vocab_size, size=T).tolist()
        cname = f"len{T}"
        lg = logits_of(ref, ids)
        if not np.isfinite(lg).all():
            raise RuntimeError(f"{name}/{cname}: non-finite logits")
        d_bf16 = float(np.abs(logits_of(via_bf16, ids) - lg).max())
        if d_bf16 > 1e-5:
            print(f"  note: {cname}: from_pretrained(dtype=bf16).float() differs by {d_bf16:.2e} (buffers)")
        d_rep = float(np.abs(logits_of(ref, ids) - lg).max())
        if d_rep > 1e-5:
            raise RuntimeError(f"{name}/{cname}: two forward passes differ by {d_rep} (nondeterminism)")
        new = common.greedy(ref, ids, N_NEW)
        check = common.greedy_nocache(ref, ids, N_NEW)
        # Greedy decode via the recurrent (cached) path must agree with full forward passes.
        agree = sum(1 for a, b in zip(new, check) if a == b)
        if agree != N_NEW:
            raise RuntimeError(f"{name}/{cname}: greedy ids from generate() and from full forward passes agree on "
                               f"{agree} of {N_NEW} tokens (a near-tie): change the case's seed")
        common.save_npy(os.path.join(case_dir, f"{cname}.logits.npy"), lg)
        entry = {"name": cname, "prompt_ids": ids, "logits": f"{cname}.logits.npy", "greedy_ids": new,
                 "hidden_states": None}
        if cname == HIDDEN_CASE:
            hs, hs_labels = hidden_states_of(ref, ids)
            hs_note = "entries: " + "; ".join(f"[{i}] {lab}" for i, lab in enumerate(hs_labels))
            common.save_npy(os.path.join(case_dir, f"{cname}.hidden_states.npy"), hs)
            entry["hidden_states"] = f"{cname}.hidden_states.npy"
        cases.append(entry)
        summary.append((cname, float(lg.std()), float(lg.min()), float(lg.max()), new[:8], agree))
        if T == max(PROMPT_LENGTHS):
            long_ids, long_logits = ids, lg
        if float(lg.std()) < 0.5:
            raise RuntimeError(f"{name}/{cname}: logits std {lg.std():.3f} is too small to be a useful test")

    alt_report = None
    if case["alt"]:
        alt_report = save_alt(case, alt_sd, case_dir, os.path.join(case_dir, "alt"), long_logits, long_ids, dev)

    notes = (f"Tiny random {case['model_type']} model, layer pattern {case['pattern']}. Weights drawn by "
             f"tools/golden/make_fixtures.py (seed {case['seed']}), saved in bf16 by save_pretrained. Logits: one "
             f"full forward pass (use_cache=False, attn_implementation=eager) of the model loaded from these bf16 "
             f"files as float32 (from_pretrained(dtype=float32): exact weights, rotary buffers computed in "
             f"float32), CUDA, TF32 off. greedy_ids: generate(do_sample=False, "
             f"max_new_tokens={N_NEW}) with eos disabled (only new tokens), checked equal to greedy decoding by full "
             f"forward passes. Prompts are random ids in "
             f"[{FIRST_NORMAL_ID}, vocab). hidden_states ({HIDDEN_CASE}): {hs_note}.")
    if case["alt"]:
        notes += (" alt/ holds the same bf16 tensors under transformers' in-memory names (model.state_dict())"
                  + (" with the published Moonshot config.json format" if case["model_type"] == "kimi_linear"
                     else "") + "; it must give these logits.")
    doc = {"model_type": case["model_type"], "transformers_version": transformers.__version__,
           "torch_version": torch.__version__, "device": common.gpu_name(), "weights_dtype": "bfloat16",
           "compute_dtype": "float32", "vocab_size": cfg.vocab_size, "layer_pattern": case["pattern"],
           "n_params": n_params, "notes": notes, "hidden_states_entries": hs_labels, "alt_checks": alt_report,
           "cases": cases}
    common.write_json(os.path.join(case_dir, "cases.json"), doc)
    print(f"  config used: {json.dumps(json.load(open(os.path.join(case_dir, 'config.json'))), sort_keys=True)}")
    return name, n_params, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--only", nargs="*", help="case names to (re)make")
    args = ap.parse_args()
    common.strict_fp32()
    dev = common.device()
    import transformers
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {common.gpu_name()}")
    rows, failed = [], []
    for case in CASES:
        if args.only and case["name"] not in args.only:
            continue
        try:
            rows.append(make_case(case, args.out, dev))
        except Exception as e:  # noqa: BLE001 — keep going so one call yields every case that works
            import traceback
            traceback.print_exc()
            failed.append(f"{case['name']}: {type(e).__name__}: {e}")
    print("\n| case | params | prompt | logits std | min | max | greedy (first 8) | cache==nocache |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n_params, summary in rows:
        for cname, std, lo, hi, new, agree in summary:
            print(f"| {name} | {n_params} | {cname} | {std:.3f} | {lo:.2f} | {hi:.2f} | {new} | {agree}/{N_NEW} |")
    if failed:
        print("\nFAILED:\n  " + "\n  ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
