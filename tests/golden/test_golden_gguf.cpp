// GGUF files written by llama.cpp's own converter (tests/golden/gguf/README.md says how) against the
// Hugging Face folder they were converted from: `--model X.gguf` must run the same model as
// `--model DIR`.
//   - BF16 files: logits at every position of every golden prompt within float rounding of the
//     folder's (the converter's transforms, e.g. A stored as -exp(A_log) or norms as 1 + w, are undone
//     in float32), within 1e-4 of transformers' logits, and the same greedy ids;
//   - quantized tensors (Q8_0, Q4_0 twins of those files written here): exactly the logits of the
//     values their blocks hold; the format's error against the folder is measured and printed;
//   - files linfer cannot run are refused by name: an architecture it has no mapping for, a tensor
//     no mapping uses.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../gguf_writer.h"
#include "golden_cases.h"
#include "io/gguf.h"
#include "kernels/cpu/quant/quantize.h"
#include "linfer/core/error.h"
#include "linfer/model.h"

namespace fs = std::filesystem;
using linfer::Model;
using namespace linfer::test;

namespace {

struct GgufCase {
  const char* fixture;  // tests/golden/<fixture>: the HF folder, cases.json, transformers' logits
  const char* file;     // tests/golden/gguf/<file>
  double tol_vs_folder; // max over positions of ‖Δ‖ / ‖folder's logits‖
  bool exact;           // greedy ids equal to transformers'
};

// BF16: the folder's weights are bf16 too, so only the undone transforms (in float32) differ: measured
// 1.8e-6 (mamba2), 7.1e-6 (qwen3_next), 5.0e-7 (kimi_linear), worst position of every prompt.
const GgufCase kCases[] = {
    {"mamba2_a", "mamba2_a-bf16.gguf", 5e-5, true},
    {"qwen3_next_a", "qwen3_next_a-bf16.gguf", 5e-5, true},
    {"kimi_linear_a", "kimi_linear_a-bf16.gguf", 5e-5, true},
};

class GoldenGguf : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GoldenGguf, SameLogitsAsTheFolderItWasConvertedFrom) {
  const GgufCase& gc = GetParam();
  const auto folder = Model::load((kGolden / gc.fixture).string());
  const auto gguf = Model::load((kGolden / "gguf" / gc.file).string());
  ASSERT_EQ(gguf->info().architecture, folder->info().architecture);
  ASSERT_EQ(gguf->info().vocab_size, folder->info().vocab_size);
  ASSERT_EQ(gguf->info().layers, folder->info().layers);
  EXPECT_EQ(gguf->info().n_params, folder->info().n_params);
  const int64_t V = folder->info().vocab_size;
  double worst = 0, worst_tf = 0;
  for (const GoldenCase& p : golden_cases(kGolden / gc.fixture)) {
    const auto a = full_logits(*gguf, p.prompt), b = full_logits(*folder, p.prompt);
    const int64_t T = int64_t(p.prompt.size());
    worst = std::max(worst, max_rel_err(a.data(), b.data(), T, V));
    worst_tf = std::max(worst_tf, max_rel_err(a.data(), p.logits.f32(), T, V));
    EXPECT_LE(max_rel_err(a.data(), b.data(), T, V), gc.tol_vs_folder) << gc.file << " " << p.name;
    if (gc.exact) EXPECT_LE(max_rel_err(a.data(), p.logits.f32(), T, V), 1e-4) << gc.file << " " << p.name;
  }
  std::printf("%s: logits vs the HF folder %.2e, vs transformers %.2e (max relative, every position)\n", gc.file,
              worst, worst_tf);
}

TEST_P(GoldenGguf, GreedyIdsMatchTransformers) {
  const GgufCase& gc = GetParam();
  if (!gc.exact) GTEST_SKIP() << gc.file << ": quantized, greedy agreement is measured, not required";
  const auto m = Model::load((kGolden / "gguf" / gc.file).string());
  for (const GoldenCase& p : golden_cases(kGolden / gc.fixture))
    EXPECT_EQ(greedy_ids(*m, p.prompt, p.greedy.size()), p.greedy) << gc.file << " " << p.name;
}

INSTANTIATE_TEST_SUITE_P(Files, GoldenGguf, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                           std::string n = info.param.file;
                           for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// ---- quantized tensors ----------------------------------------------------------------------------
// llama.cpp's quantizer is not run here: a quantized twin of each BF16 file is written by the test
// (same metadata and names; every BF16 matrix whose rows are whole 32-element blocks quantized with
// linfer's quantizer, in GGUF's block layout) together with an F32 twin holding exactly the values the
// quantized blocks represent. The quantized file must give the F32 twin's logits (the mapping of
// quantized tensors: views, expert slices, row re-interleaving, kv_b's dequantized join; the quantized
// kernels) and stay within the format's measured error of the HF folder.

std::string encode(const linfer::GgufValue& v) {
  using linfer::GgufType;
  using W = linfer::test::GgufWriter;
  switch (v.type) {
    case GgufType::U8: case GgufType::Bool: return W::le(v.type == GgufType::Bool ? uint64_t(v.i) : v.u, 1);
    case GgufType::I8: return W::le(uint64_t(v.i), 1);
    case GgufType::U16: return W::le(v.u, 2);
    case GgufType::I16: return W::le(uint64_t(v.i), 2);
    case GgufType::U32: return W::le(v.u, 4);
    case GgufType::I32: return W::le(uint64_t(v.i), 4);
    case GgufType::U64: return W::le(v.u, 8);
    case GgufType::I64: return W::le(uint64_t(v.i), 8);
    case GgufType::F32: return W::f32(float(v.f));
    case GgufType::F64: return W::f64(v.f);
    case GgufType::String: return W::str(v.str);
    case GgufType::Array: {
      std::vector<std::string> items;
      for (const auto& it : v.items) items.push_back(encode(it));
      return W::array(uint32_t(v.elem), items);
    }
  }
  return "";
}

// Writes `quantized` (matrices in `type`) and `dequantized` (the same values in F32) twins of `src`.
void write_twins(const std::string& src, linfer::DType type, uint32_t ggml_type, const std::string& quantized,
                 const std::string& dequantized) {
  const linfer::GgufFile f(src);
  linfer::test::GgufWriter q, d;
  for (const auto& [key, value] : f.header().metadata) {
    q.kv(key, uint32_t(value.type), encode(value));
    d.kv(key, uint32_t(value.type), encode(value));
  }
  for (const auto& t : f.header().tensors) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.end());
    const auto bytes = f.bytes(t);
    const std::string raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (std::string(t.type->name) != "BF16" || t.ne.size() < 2 || t.ne[0] % 32 != 0) {
      q.tensor(t.name, ne, t.type->id, raw);
      d.tensor(t.name, ne, t.type->id, raw);
      continue;
    }
    const linfer::Tensor w = linfer::Tensor::to_f32(f.view(t));
    const int64_t K = t.ne[0], rows = t.numel() / K;
    std::string qb(linfer::dtype_nbytes(type, t.numel()), '\0'), db(size_t(t.numel()) * 4, '\0');
    const size_t row_bytes = linfer::dtype_nbytes(type, K);
    for (int64_t r = 0; r < rows; ++r) {
      linfer::kernels::quantize_row(type, w.f32() + r * K, qb.data() + r * row_bytes, K);
      linfer::to_f32(type, qb.data() + r * row_bytes, reinterpret_cast<float*>(db.data()) + r * K, size_t(K));
    }
    q.tensor(t.name, ne, ggml_type, qb);
    d.tensor(t.name, ne, 0, db);
  }
  std::ofstream(quantized, std::ios::binary) << q.build();
  std::ofstream(dequantized, std::ios::binary) << d.build();
}

// A quantized model against the F32 twin of its blocks' values and against the HF folder, over every
// golden prompt of `fixture`, every position.
struct QuantError {
  double vs_dq = 0;           // max relative error vs the dequantized twin
  double vs_folder = 0;       // max relative error vs the folder
  double mean_vs_folder = 0;  // mean over positions of the relative error vs the folder
  double agree = 0;           // fraction of positions where the argmax equals the folder's
};

QuantError measure(const Model& quantized, const Model& dequantized, const Model& folder, const std::string& fixture) {
  const int64_t V = folder.info().vocab_size;
  QuantError e;
  double n = 0;
  for (const GoldenCase& p : golden_cases(kGolden / fixture)) {
    const auto a = full_logits(quantized, p.prompt), b = full_logits(dequantized, p.prompt),
               c = full_logits(folder, p.prompt);
    const int64_t T = int64_t(p.prompt.size());
    e.vs_dq = std::max(e.vs_dq, max_rel_err(a.data(), b.data(), T, V));
    e.vs_folder = std::max(e.vs_folder, max_rel_err(a.data(), c.data(), T, V));
    for (int64_t t = 0; t < T; ++t, ++n) {
      e.agree += argmax(&a[size_t(t * V)], V) == argmax(&c[size_t(t * V)], V);
      e.mean_vs_folder += max_rel_err(&a[size_t(t * V)], &c[size_t(t * V)], 1, V);
    }
  }
  e.agree /= n;
  e.mean_vs_folder /= n;
  return e;
}

struct QuantCase {
  const char* file;
  linfer::DType type;
  uint32_t ggml_type;
};

class GoldenGgufQuantized : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(GoldenGgufQuantized, SameLogitsAsItsDequantizedValues) {
  const auto [fixture, which] = GetParam();
  const QuantCase qc = which == 0 ? QuantCase{"q8_0", linfer::DType::Q8_0, 8} : QuantCase{"q4_0", linfer::DType::Q4_0, 2};
  const std::string base = (fs::temp_directory_path() / (std::string("linfer_") + fixture + "_" + qc.file)).string();
  write_twins((kGolden / "gguf" / (std::string(fixture) + "-bf16.gguf")).string(), qc.type, qc.ggml_type,
              base + ".gguf", base + "-dq.gguf");
  const auto quantized = Model::load(base + ".gguf");
  const auto dequantized = Model::load(base + "-dq.gguf");
  const auto folder = Model::load((kGolden / fixture).string());
  fs::remove(base + ".gguf");
  fs::remove(base + "-dq.gguf");
  const QuantError e = measure(*quantized, *dequantized, *folder, fixture);
  std::printf("%s %s: logits vs its dequantized values %.2e; vs the HF folder %.2e mean, %.2e max; argmax agreement "
              "%.3f\n", fixture, qc.file, e.vs_dq, e.mean_vs_folder, e.vs_folder, e.agree);
  EXPECT_LE(e.vs_dq, 3e-4);  // measured <= 6.7e-5
}

INSTANTIATE_TEST_SUITE_P(Files, GoldenGgufQuantized,
                         ::testing::Combine(::testing::Values("mamba2_a", "qwen3_next_a", "kimi_linear_a"),
                                            ::testing::Values(0, 1)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_q4_0" : "_q8_0");
                         });

// llama.cpp's own quantizer (llama-quantize, README.md): mamba2_a in Q8_0, Q4_0 and Q5_K_M, and the
// Q4_K_M files of qwen3_next_a and kimi_linear_a (their 64- and 16-wide rows fall back from the K-quants
// to Q5_0, Q5_1, Q8_0 and F16, mixed within a layer: qwen3_next's attn_qkv and attn_gate differ; Q8_0 /
// Q4_0 cannot hold the 16-wide rows at all). Same check: the logits of the values the blocks hold (an F32
// twin written here), and the error against the folder printed.
void write_dequantized(const std::string& src, const std::string& dst) {
  const linfer::GgufFile f(src);
  linfer::test::GgufWriter d;
  for (const auto& [key, value] : f.header().metadata) d.kv(key, uint32_t(value.type), encode(value));
  for (const auto& t : f.header().tensors) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.end());
    const auto bytes = f.bytes(t);
    if (!t.type->dtype || !linfer::is_quantized(*t.type->dtype)) {
      d.tensor(t.name, ne, t.type->id, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      continue;
    }
    const linfer::Tensor w = linfer::Tensor::to_f32(f.view(t));
    d.tensor(t.name, ne, 0, std::string(reinterpret_cast<const char*>(w.f32()), size_t(w.numel()) * 4));
  }
  std::ofstream(dst, std::ios::binary) << d.build();
}

class GoldenGgufLlamaQuantized : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenGgufLlamaQuantized, SameLogitsAsItsDequantizedValues) {
  const std::string file = GetParam(), fixture = file.substr(0, file.find('-'));
  const std::string dq = (fs::temp_directory_path() / ("linfer_dq_" + file)).string();
  write_dequantized((kGolden / "gguf" / file).string(), dq);
  const auto quantized = Model::load((kGolden / "gguf" / file).string());
  const auto dequantized = Model::load(dq);
  const auto folder = Model::load((kGolden / fixture).string());
  fs::remove(dq);
  const QuantError e = measure(*quantized, *dequantized, *folder, fixture);
  std::printf("%s (llama-quantize): logits vs its dequantized values %.2e; vs the HF folder %.2e mean, %.2e max; "
              "argmax agreement %.3f\n", file.c_str(), e.vs_dq, e.mean_vs_folder, e.vs_folder, e.agree);
  EXPECT_LE(e.vs_dq, 3e-4);
}

INSTANTIATE_TEST_SUITE_P(Files, GoldenGgufLlamaQuantized, ::testing::Values("mamba2_a-Q8_0.gguf", "mamba2_a-Q4_0.gguf",
                                                                        "mamba2_a-Q5_K_M.gguf", "qwen3_next_a-Q4_K_M.gguf",
                                                                        "kimi_linear_a-Q4_K_M.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// ---- files linfer cannot run -------------------------------------------------------------------

std::string load_error(const std::string& file_bytes, const std::string& name) {
  const fs::path p = fs::temp_directory_path() / name;
  { std::ofstream(p, std::ios::binary) << file_bytes; }
  std::string msg;
  try {
    Model::load(p.string());
    ADD_FAILURE() << name << " loaded";
  } catch (const linfer::Error& e) {
    msg = e.what();
  }
  fs::remove(p);
  return msg;
}

TEST(GgufRefused, UnknownArchitectureIsNamed) {
  linfer::test::GgufWriter w;
  w.kv_string("general.architecture", "llama");
  const std::string msg = load_error(w.build(), "linfer_gguf_llama.gguf");
  EXPECT_NE(msg.find("general.architecture 'llama' is not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mamba2"), std::string::npos) << msg;
}

// A mamba2 file whose tensors are all unknown to the mapping except the ones it needs first: the
// message names the stray tensor (a file from a newer converter must not half-load).
TEST(GgufRefused, StrayTensorIsNamed) {
  linfer::test::GgufWriter w;
  w.kv_string("general.architecture", "mamba2");
  w.kv_u32("mamba2.block_count", 0);
  w.kv_u32("mamba2.embedding_length", 4);
  w.kv_u32("mamba2.ssm.inner_size", 8);
  w.kv_u32("mamba2.ssm.time_step_rank", 2);
  w.kv_u32("mamba2.ssm.state_size", 4);
  w.kv_u32("mamba2.ssm.group_count", 1);
  w.kv_u32("mamba2.ssm.conv_kernel", 4);
  w.kv_f32("mamba2.attention.layer_norm_rms_epsilon", 1e-5f);
  w.tensor("token_embd.weight", {4, 8}, linfer::test::GgufWriter::kF32, std::string(128, '\0'));
  w.tensor("output_norm.weight", {4}, linfer::test::GgufWriter::kF32, std::string(16, '\0'));
  w.tensor("blk.0.mystery.weight", {4}, linfer::test::GgufWriter::kF32, std::string(16, '\0'));
  const std::string msg = load_error(w.build(), "linfer_gguf_stray.gguf");
  EXPECT_NE(msg.find("'blk.0.mystery.weight'"), std::string::npos) << msg;
}

}  // namespace
