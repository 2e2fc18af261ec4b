#pragma once
// Architectures as data: a model is a list of layers, each {mixer kind, ffn kind, dims}, built from
// the checkpoint's own config.json by one small factory per architecture (kimi_linear.cpp,
// qwen3_next.cpp, mamba2.cpp; registry.cpp maps model_type -> factory). One forward path
// (model.cpp) serves every architecture; it branches only on these enums.

#include <cstdint>
#include <string>
#include <vector>

#include "ffn/ffn.h"
#include "mixers/dims.h"

namespace linfer {

enum class MixerKind : uint8_t {
  Kda,        // Kimi Delta Attention: per-channel decay delta rule, short convs, low-rank gates
  Gdn,        // Gated DeltaNet (Qwen3-Next): scalar decay per head, packed in_proj_qkvz / in_proj_ba
  Mamba2,     // SSD
  Attention,  // softmax attention, GQA; optional q/k norm, partial RoPE, sigmoid output gate
  Mla,        // multi-head latent attention; latent KV cache
};

enum class FfnKind : uint8_t { None, Dense, Moe };

// RMSNorm weight convention: Plain y = x̂·w (Kimi, Mamba2); ZeroCentred y = x̂·(1 + w) (Qwen3-Next).
enum class NormKind : uint8_t { Plain, ZeroCentred };

struct LayerConfig {
  MixerKind mixer = MixerKind::Kda;
  FfnKind ffn = FfnKind::None;
  DeltaDims delta;     // Kda, Gdn
  Mamba2Dims mamba;    // Mamba2
  AttentionDims attn;  // Attention
  MlaDims mla;         // Mla
  int64_t dense_intermediate = 0;  // Dense
  MoeDims moe;                     // Moe
  // Where this layer's tensors live in the checkpoint, e.g. "model.layers.3.", "self_attn.",
  // {"block_sparse_moe.", "mlp."} (alternatives, the first present wins).
  std::string prefix;
  std::string mixer_prefix;
  std::vector<std::string> ffn_prefixes;
  std::string input_norm = "input_layernorm.weight";
  std::string post_norm = "post_attention_layernorm.weight";  // empty: no ffn sub-block
};

struct ModelConfig {
  std::string architecture;  // model_type
  int64_t vocab = 0, hidden = 0;
  double norm_eps = 1e-6;
  NormKind norm = NormKind::Plain;
  bool tie_embeddings = false;
  int64_t bos = -1, eos = -1;
  std::vector<LayerConfig> layers;
  // Global tensor names.
  std::string embed = "model.embed_tokens.weight";
  std::string final_norm = "model.norm.weight";
  std::string lm_head = "lm_head.weight";
  // Checkpoint tensors that are known and deliberately unused (prefix match), e.g. "mtp.".
  std::vector<std::string> ignorable_prefixes;
  std::vector<std::string> ignorable_suffixes;  // e.g. "rotary_emb.inv_freq"
};

const char* mixer_name(MixerKind k);
const char* ffn_name(FfnKind k);

}  // namespace linfer
