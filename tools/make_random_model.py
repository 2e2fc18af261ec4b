#!/usr/bin/python3
"""Random-weight Hugging Face model folders of realistic shape, for end-to-end benchmarks.

    tools/make_random_model.py mamba2 OUT_DIR        # one of the presets below
    tools/make_random_model.py --config CONFIG.json OUT_DIR

Writes OUT_DIR/config.json and OUT_DIR/model.safetensors (bf16), with numpy only (Debian's
python3-numpy): safetensors is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw bytes.

The presets match the models of NOTES.md's llama.cpp table (same hidden size, layer count and
pattern, experts, top-k; the remaining dims are chosen to land near the published parameter counts
and are listed in docs/benchmarks.md, "End to end"). Tensor names follow the published checkpoints
(Kimi: Moonshot names and the `linear_attn_config` config format; Qwen3-Next: per-expert tensors), so
llama.cpp's converter reads the same folders.

Scales keep activations sane at any depth: every projection is N(0, 1/fan_in) so a unit-RMS input
gives a unit-RMS output; projections that write into the residual stream are further scaled by
1/sqrt(2·layers); the embedding is N(0, 1) (normed before use) and the untied head N(0, 1/hidden),
so logits are O(1) (a tied embedding is N(0, 1/hidden) for the same reason); routers are N(0, 1/hidden) so routing is neither uniform nor one-hot. Decay
parameters follow the architectures' own initialisations (A in [1, 16], dt in [0.001, 0.1]).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

PRESETS = {
    # 115M: mamba2-130m's shape with a 32000-token vocabulary, tied head.
    "mamba2": {
        "architectures": ["Mamba2ForCausalLM"],
        "model_type": "mamba2",
        "vocab_size": 32000,
        "hidden_size": 768,
        "num_hidden_layers": 24,
        "state_size": 128,
        "expand": 2,
        "head_dim": 64,
        "num_heads": 24,
        "n_groups": 1,
        "conv_kernel": 4,
        "use_conv_bias": True,
        "use_bias": False,
        "chunk_size": 256,
        "layer_norm_epsilon": 1e-5,
        "rms_norm": True,
        "residual_in_fp32": True,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "torch_dtype": "bfloat16",
    },
    # ~1.01B total / ~0.31B active: 12 GDN + 4 gated attention layers, MoE 32 experts top-4 in every layer.
    "qwen3next": {
        "architectures": ["Qwen3NextForCausalLM"],
        "model_type": "qwen3_next",
        "vocab_size": 32000,
        "hidden_size": 1024,
        "num_hidden_layers": 16,
        "full_attention_interval": 4,
        "linear_num_key_heads": 8,
        "linear_num_value_heads": 16,
        "linear_key_head_dim": 128,
        "linear_value_head_dim": 128,
        "linear_conv_kernel_dim": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "partial_rotary_factor": 0.25,
        "rope_theta": 10000.0,
        "intermediate_size": 2048,
        "num_experts": 32,
        "num_experts_per_tok": 4,
        "moe_intermediate_size": 512,
        "shared_expert_intermediate_size": 512,
        "norm_topk_prob": True,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "max_position_embeddings": 65536,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "bfloat16",
    },
    # ~0.92B total / ~0.26B active: 12 KDA + 4 MLA layers (3 : 1), layer 0 dense, MoE 32 experts top-4.
    "kimi_linear": {
        "architectures": ["KimiLinearForCausalLM"],
        "model_type": "kimi_linear",
        "vocab_size": 32000,
        "hidden_size": 1024,
        "num_hidden_layers": 16,
        "linear_attn_config": {
            "kda_layers": [i + 1 for i in range(16) if (i + 1) % 4 != 0],
            "full_attn_layers": [i + 1 for i in range(16) if (i + 1) % 4 == 0],
            "num_heads": 8,
            "head_dim": 128,
            "short_conv_kernel_size": 4,
        },
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "q_lora_rank": None,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "mla_use_nope": True,
        "intermediate_size": 1536,
        "moe_intermediate_size": 512,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "num_experts": 32,
        "num_experts_per_token": 4,
        "num_shared_experts": 1,
        "moe_renormalize": True,
        "moe_router_activation_func": "sigmoid",
        "routed_scaling_factor": 2.446,
        "use_grouped_topk": True,
        "num_expert_group": 1,
        "topk_group": 1,
        "num_nextn_predict_layers": 0,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "model_max_length": 65536,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "torch_dtype": "bfloat16",
    },
}


def to_bf16(a):
    """float32 array -> uint16 bf16 bits, round to nearest even (NaN-free input)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


class Writer:
    """Collects bf16 tensors in memory (as uint16), then writes one safetensors file."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.tensors = {}

    def add(self, name, values):
        assert name not in self.tensors, name
        self.tensors[name] = to_bf16(values)

    def normal(self, name, shape, std):
        self.add(name, self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def linear(self, name, out_dim, in_dim, gain=1.0):
        self.normal(name, (out_dim, in_dim), gain / math.sqrt(in_dim))

    def uniform(self, name, shape, lo, hi):
        self.add(name, self.rng.uniform(lo, hi, shape).astype(np.float32))

    def const(self, name, shape, value):
        self.add(name, np.full(shape, value, dtype=np.float32))

    def write(self, path):
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        names = sorted(self.tensors)
        for n in names:
            t = self.tensors[n]
            header[n] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
            offset += t.nbytes
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for n in names:
                f.write(self.tensors[n].tobytes())
        return offset


def log_A(w, name, shape):  # A = exp(A_log) uniform in [1, 16]
    w.add(name, np.log(w.rng.uniform(1, 16, shape)).astype(np.float32))


def dt_bias(w, name, shape):  # softplus(dt_bias) = dt, log-uniform in [0.001, 0.1]
    dt = np.exp(w.rng.uniform(math.log(1e-3), math.log(1e-1), shape))
    w.add(name, (dt + np.log(-np.expm1(-dt))).astype(np.float32))


def mlp(w, p, names, hidden, inter, out_gain):
    gate, up, down = names
    w.linear(p + gate, inter, hidden)
    w.linear(p + up, inter, hidden)
    w.linear(p + down, hidden, inter, out_gain)


def mamba2(c, w):
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    di = int(c["expand"] * H)
    nh, G, N, W = c["num_heads"], c["n_groups"], c["state_size"], c["conv_kernel"]
    assert nh * c["head_dim"] == di, "num_heads x head_dim must equal expand x hidden_size"
    out_gain = 1 / math.sqrt(2 * L)
    tied = c.get("tie_word_embeddings", True)
    w.normal("backbone.embeddings.weight", (V, H), 1 / math.sqrt(H) if tied else 1.0)
    for i in range(L):
        p = f"backbone.layers.{i}."
        conv = di + 2 * G * N
        w.const(p + "norm.weight", (H,), 1.0)
        w.linear(p + "mixer.in_proj.weight", 2 * di + 2 * G * N + nh, H)
        w.normal(p + "mixer.conv1d.weight", (conv, 1, W), 1 / math.sqrt(W))
        w.const(p + "mixer.conv1d.bias", (conv,), 0.0)
        log_A(w, p + "mixer.A_log", (nh,))
        dt_bias(w, p + "mixer.dt_bias", (nh,))
        w.const(p + "mixer.D", (nh,), 1.0)
        w.const(p + "mixer.norm.weight", (di,), 1.0)
        w.linear(p + "mixer.out_proj.weight", H, di, out_gain)
    w.const("backbone.norm_f.weight", (H,), 1.0)
    if not tied:
        w.linear("lm_head.weight", V, H)


def moe_router(w, p, E, H):
    w.normal(p + "gate.weight", (E, H), 1 / math.sqrt(H))


def qwen3_next(c, w):
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    out_gain = 1 / math.sqrt(2 * L)
    Hk, Hv, K, Vd = (c["linear_num_key_heads"], c["linear_num_value_heads"], c["linear_key_head_dim"],
                     c["linear_value_head_dim"])
    nq, nkv, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    E, I, Is = c["num_experts"], c["moe_intermediate_size"], c["shared_expert_intermediate_size"]
    interval = c.get("full_attention_interval", 4)
    w.normal("model.embed_tokens.weight", (V, H), 1.0)
    for i in range(L):
        p = f"model.layers.{i}."
        # Zero-centred RMSNorm: the stored weight w scales by (1 + w).
        w.const(p + "input_layernorm.weight", (H,), 0.0)
        w.const(p + "post_attention_layernorm.weight", (H,), 0.0)
        if (i + 1) % interval == 0:
            a = p + "self_attn."
            w.linear(a + "q_proj.weight", nq * D * 2, H)  # query and output gate
            w.linear(a + "k_proj.weight", nkv * D, H)
            w.linear(a + "v_proj.weight", nkv * D, H)
            w.linear(a + "o_proj.weight", H, nq * D, out_gain)
            w.const(a + "q_norm.weight", (D,), 0.0)
            w.const(a + "k_norm.weight", (D,), 0.0)
        else:
            a = p + "linear_attn."
            kd, vd = Hk * K, Hv * Vd
            w.linear(a + "in_proj_qkvz.weight", 2 * kd + 2 * vd, H)
            w.linear(a + "in_proj_ba.weight", 2 * Hv, H)
            w.normal(a + "conv1d.weight", (2 * kd + vd, 1, c["linear_conv_kernel_dim"]), 0.5)
            log_A(w, a + "A_log", (Hv,))
            dt_bias(w, a + "dt_bias", (Hv,))
            w.const(a + "norm.weight", (Vd,), 1.0)  # the GDN output norm is plain x̂·w
            w.linear(a + "out_proj.weight", H, vd, out_gain)
        m = p + "mlp."
        moe_router(w, m, E, H)
        for e in range(E):
            mlp(w, f"{m}experts.{e}.", ("gate_proj.weight", "up_proj.weight", "down_proj.weight"), H, I, out_gain)
        mlp(w, m + "shared_expert.", ("gate_proj.weight", "up_proj.weight", "down_proj.weight"), H, Is, out_gain)
        w.linear(m + "shared_expert_gate.weight", 1, H)
    w.const("model.norm.weight", (H,), 0.0)
    w.linear("lm_head.weight", V, H)


def kimi_linear(c, w):
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    out_gain = 1 / math.sqrt(2 * L)
    lin = c["linear_attn_config"]
    nh, hd, W = lin["num_heads"], lin["head_dim"], lin["short_conv_kernel_size"]
    kda = set(lin["kda_layers"])
    n_mla, rank = c["num_attention_heads"], c["kv_lora_rank"]
    nope, rope, vh = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    E, I = c["num_experts"], c["moe_intermediate_size"]
    Is = I * c.get("num_shared_experts", 1)
    w.normal("model.embed_tokens.weight", (V, H), 1.0)
    for i in range(L):
        p = f"model.layers.{i}."
        w.const(p + "input_layernorm.weight", (H,), 1.0)
        w.const(p + "post_attention_layernorm.weight", (H,), 1.0)
        a = p + "self_attn."
        if i + 1 in kda:
            d = nh * hd
            for x in "qkv":
                w.linear(a + f"{x}_proj.weight", d, H)
                w.normal(a + f"{x}_conv1d.weight", (d, 1, W), 0.5)
            w.linear(a + "f_a_proj.weight", hd, H)
            w.linear(a + "f_b_proj.weight", d, hd)
            log_A(w, a + "A_log", (1, 1, nh, 1))
            dt_bias(w, a + "dt_bias", (d,))
            w.linear(a + "b_proj.weight", nh, H)
            w.linear(a + "g_a_proj.weight", hd, H)
            w.linear(a + "g_b_proj.weight", d, hd)
            w.const(a + "o_norm.weight", (hd,), 1.0)
            w.linear(a + "o_proj.weight", H, d, out_gain)
        else:
            w.linear(a + "q_proj.weight", n_mla * (nope + rope), H)
            w.linear(a + "kv_a_proj_with_mqa.weight", rank + rope, H)
            w.const(a + "kv_a_layernorm.weight", (rank,), 1.0)
            w.linear(a + "kv_b_proj.weight", n_mla * (nope + vh), rank)
            w.linear(a + "o_proj.weight", H, n_mla * vh, out_gain)
        if i < c.get("first_k_dense_replace", 1):
            mlp(w, p + "mlp.", ("gate_proj.weight", "up_proj.weight", "down_proj.weight"), H, c["intermediate_size"],
                out_gain)
        else:
            m = p + "block_sparse_moe."
            moe_router(w, m, E, H)
            w.const(m + "gate.e_score_correction_bias", (E,), 0.0)
            for e in range(E):
                mlp(w, f"{m}experts.{e}.", ("w1.weight", "w3.weight", "w2.weight"), H, I, out_gain)
            mlp(w, m + "shared_experts.", ("gate_proj.weight", "up_proj.weight", "down_proj.weight"), H, Is, out_gain)
    w.const("model.norm.weight", (H,), 1.0)
    w.linear("lm_head.weight", V, H)


BUILDERS = {"mamba2": mamba2, "qwen3_next": qwen3_next, "kimi_linear": kimi_linear}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", choices=sorted(PRESETS), help="one of the benchmark shapes")
    ap.add_argument("out", help="output folder")
    ap.add_argument("--config", help="a config.json to use instead of a preset")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if (args.preset is None) == (args.config is None):
        ap.error("give a preset or --config, not both")
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    else:
        config = PRESETS[args.preset]
    build = BUILDERS.get(config.get("model_type"))
    if build is None:
        sys.exit(f"{args.config or args.preset}: model_type must be one of {sorted(BUILDERS)}")
    w = Writer(args.seed)
    build(config, w)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    nbytes = w.write(os.path.join(args.out, "model.safetensors"))
    n = sum(t.size for t in w.tensors.values())
    print(f"{args.out}: {config['model_type']}, {n / 1e6:.1f}M parameters, {nbytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
