"""The published shapes of the three architectures linfer loads, as far as the state on the wire goes.

Sources (each value below is the published config.json's):
- Kimi-Linear-48B-A3B: ../shared/research/kimi_linear.md §1.4-1.5 (moonshotai/Kimi-Linear-48B-A3B-Instruct
  config.json): 27 layers, KDA at 1-indexed layers [1..27] minus full_attn_layers [4,8,12,16,20,24,27],
  32 KDA heads x 128, short conv 4; MLA kv_lora_rank 512 + qk_rope_head_dim 64 (32 heads, nope 128,
  v 128); hidden 2304; vocab 163840.
- Qwen3-Next-80B-A3B: Qwen/Qwen3-Next-80B-A3B-Instruct config.json (dims as in
  ../shared/research/kimi_linear.md §4): 48 layers, full_attention_interval 4 (12 gated attention layers,
  16 query heads, 2 KV heads x 256), 36 Gated DeltaNet layers (16 key heads, 32 value heads, 128 x 128,
  conv 4); hidden 2048; vocab 151936.
- mamba2-2.7b: state-spaces/mamba2-2.7b config.json: d_model 2560, n_layer 64, d_state 128, expand 2,
  headdim 64 (80 heads), ngroups 1, d_conv 4; vocab 50277 padded to a multiple of 16 = 50288.

`wire_config(arch)` gives a config for tools/make_random_model.py with these per-layer state and
attention dims, the published layer count and pattern and the published vocabulary (the logits record
is vocab x 4 bytes), but a small hidden size and a tiny FFN: the state's bytes do not depend on either,
and the folder stays small enough to prefill on a 2-core machine.
"""

REAL = {
    "kimi_linear": {
        "name": "Kimi-Linear-48B-A3B",
        "layers": 27, "full_attn_layers": [4, 8, 12, 16, 20, 24, 27], "hidden": 2304, "vocab": 163840,
        "kda_heads": 32, "kda_head_dim": 128, "conv": 4,
        "mla_heads": 32, "kv_lora_rank": 512, "qk_nope": 128, "qk_rope": 64, "v_head": 128,
    },
    "qwen3_next": {
        "name": "Qwen3-Next-80B-A3B",
        "layers": 48, "full_attention_interval": 4, "hidden": 2048, "vocab": 151936,
        "k_heads": 16, "v_heads": 32, "k_dim": 128, "v_dim": 128, "conv": 4,
        "attn_heads": 16, "kv_heads": 2, "head_dim": 256,
    },
    "mamba2": {
        "name": "mamba2-2.7b",
        "layers": 64, "hidden": 2560, "vocab": 50288, "state": 128, "expand": 2, "head_dim": 64,
        "groups": 1, "conv": 4,
    },
}

# The hidden size of the wire models (small: projections are cheap; nothing on the wire depends on it).
WIRE_HIDDEN = 128


def wire_config(arch):
    r = REAL[arch]
    H = WIRE_HIDDEN
    if arch == "kimi_linear":
        L = r["layers"]
        return {
            "architectures": ["KimiLinearForCausalLM"], "model_type": "kimi_linear",
            "vocab_size": r["vocab"], "hidden_size": H, "num_hidden_layers": L,
            "linear_attn_config": {
                "kda_layers": [i for i in range(1, L + 1) if i not in r["full_attn_layers"]],
                "full_attn_layers": r["full_attn_layers"], "num_heads": r["kda_heads"],
                "head_dim": r["kda_head_dim"], "short_conv_kernel_size": r["conv"]},
            "num_attention_heads": r["mla_heads"], "num_key_value_heads": r["mla_heads"], "q_lora_rank": None,
            "kv_lora_rank": r["kv_lora_rank"], "qk_nope_head_dim": r["qk_nope"], "qk_rope_head_dim": r["qk_rope"],
            "v_head_dim": r["v_head"], "mla_use_nope": True,
            "intermediate_size": 64, "moe_intermediate_size": 32, "first_k_dense_replace": 1, "moe_layer_freq": 1,
            "num_experts": 2, "num_experts_per_token": 1, "num_shared_experts": 1, "moe_renormalize": True,
            "moe_router_activation_func": "sigmoid", "routed_scaling_factor": 1.0, "use_grouped_topk": True,
            "num_expert_group": 1, "topk_group": 1, "num_nextn_predict_layers": 0, "rms_norm_eps": 1e-5,
            "hidden_act": "silu", "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
            "model_max_length": 262144, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
            "torch_dtype": "bfloat16"}
    if arch == "qwen3_next":
        return {
            "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
            "vocab_size": r["vocab"], "hidden_size": H, "num_hidden_layers": r["layers"],
            "full_attention_interval": r["full_attention_interval"],
            "linear_num_key_heads": r["k_heads"], "linear_num_value_heads": r["v_heads"],
            "linear_key_head_dim": r["k_dim"], "linear_value_head_dim": r["v_dim"],
            "linear_conv_kernel_dim": r["conv"], "num_attention_heads": r["attn_heads"],
            "num_key_value_heads": r["kv_heads"], "head_dim": r["head_dim"], "partial_rotary_factor": 0.25,
            "rope_theta": 10000.0, "intermediate_size": 64, "num_experts": 2, "num_experts_per_tok": 1,
            "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32, "norm_topk_prob": True,
            "decoder_sparse_step": 1, "mlp_only_layers": [], "rms_norm_eps": 1e-6, "hidden_act": "silu",
            "tie_word_embeddings": False, "max_position_embeddings": 262144, "bos_token_id": 1,
            "eos_token_id": 2, "torch_dtype": "bfloat16"}
    if arch == "mamba2":
        d_inner = r["expand"] * r["hidden"]
        return {
            "architectures": ["Mamba2ForCausalLM"], "model_type": "mamba2", "vocab_size": r["vocab"],
            "hidden_size": H, "num_hidden_layers": r["layers"], "state_size": r["state"],
            "expand": d_inner // H, "head_dim": r["head_dim"], "num_heads": d_inner // r["head_dim"],
            "n_groups": r["groups"], "conv_kernel": r["conv"], "use_conv_bias": True, "use_bias": False,
            "chunk_size": 256, "layer_norm_epsilon": 1e-5, "rms_norm": True, "residual_in_fp32": True,
            "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
            "pad_token_id": 0, "torch_dtype": "bfloat16"}
    raise ValueError(arch)


def from_config(c):
    """The REAL-style dims of a Hugging Face config.json that tools/make_random_model.py reads."""
    t = c["model_type"]
    if t == "kimi_linear":
        lin = c["linear_attn_config"]
        return {"name": c.get("name", t), "layers": c["num_hidden_layers"], "full_attn_layers": lin["full_attn_layers"],
                "hidden": c["hidden_size"], "vocab": c["vocab_size"], "kda_heads": lin["num_heads"],
                "kda_head_dim": lin["head_dim"], "conv": lin["short_conv_kernel_size"],
                "mla_heads": c["num_attention_heads"], "kv_lora_rank": c["kv_lora_rank"],
                "qk_nope": c["qk_nope_head_dim"], "qk_rope": c["qk_rope_head_dim"], "v_head": c["v_head_dim"]}
    if t == "qwen3_next":
        return {"name": t, "layers": c["num_hidden_layers"], "full_attention_interval": c["full_attention_interval"],
                "hidden": c["hidden_size"], "vocab": c["vocab_size"], "k_heads": c["linear_num_key_heads"],
                "v_heads": c["linear_num_value_heads"], "k_dim": c["linear_key_head_dim"],
                "v_dim": c["linear_value_head_dim"], "conv": c["linear_conv_kernel_dim"],
                "attn_heads": c["num_attention_heads"], "kv_heads": c["num_key_value_heads"], "head_dim": c["head_dim"]}
    if t == "mamba2":
        return {"name": t, "layers": c["num_hidden_layers"], "hidden": c["hidden_size"], "vocab": c["vocab_size"],
                "state": c["state_size"], "expand": c["expand"], "head_dim": c["head_dim"], "groups": c["n_groups"],
                "conv": c["conv_kernel"]}
    raise ValueError(t)
