// The accuracy cost of quantized weights, measured: every golden fixture (and the demo model) written by
// `linfer quantize` as q8_0, q4_0 and q4_k, then run on each case's prompt beside the checkpoint as stored
// (bf16). Per model and type it prints a markdown row (docs/quantization.md quotes them):
//   logit error   ‖z_q − z‖ / ‖z‖ over every prompt position (RMS over positions, and the worst one);
//   top-1         positions whose argmax agrees (teacher-forced on the prompt);
//   greedy        tokens of a 16-token greedy continuation equal to the bf16 model's, up to the first
//                 difference.
// The tiny random fixtures are far more sensitive than a trained model (MoE routing flips, untrained
// recurrences), so their rows are measurements only. What is asserted: on every fixture, the quantized
// model's logits equal those of the same weights dequantized to float32 and stored as F32 (the kernels
// compute exactly "dequantize, then multiply"; 1e-3 relative at the worst position: the random
// fixtures amplify float32 rounding differences to ~1e-4); on the trained demo model, the logit error
// stays within loose multiples of what the formats' step sizes predict (q8_0 2%, 4-bit 15%; a broken
// kernel or layout gives errors of order 1), and its nats/token on the validation snippet within 0.005
// (q8_0) or 0.05 (4-bit) of bf16's. Where the int8-activation kernels run (x86-64), each type is measured
// again with activations rounded to int8 (--activations q8; prompts in chunks of 16 tokens, so that every
// product is decode-sized and takes them), its rows marked so, under the same bounds on the demo model.

#include "../cli_run.h"
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/quant_activations.h"
#include "linfer/model.h"
#include "linfer/state.h"

namespace fs = std::filesystem;
using namespace linfer;

namespace {

const fs::path kGolden = fs::path(LINFER_SOURCE_DIR) / "tests/golden";

struct Prompt {
  std::vector<int32_t> ids;
};

std::vector<Prompt> prompts_of(const fs::path& fixture) {
  std::ifstream f(fixture / "cases.json");
  const auto j = nlohmann::json::parse(f);
  std::vector<Prompt> out;
  for (const auto& c : j.at("cases")) out.push_back({c.at("prompt_ids").get<std::vector<int32_t>>()});
  return out;
}

fs::path model_of(const fs::path& fixture) {
  std::ifstream f(fixture / "cases.json");
  const auto j = nlohmann::json::parse(f);
  return j.contains("model_dir") ? fs::path(LINFER_SOURCE_DIR) / j["model_dir"].get<std::string>() : fixture;
}

// Logits at every position of ids, the prompt run in chunks of `chunk` tokens each continuing the state (0:
// one pass). Chunks of up to 48 tokens keep the products decode-sized, where int8 activations apply.
std::vector<float> logits_all(const Model& m, const std::vector<int32_t>& ids, size_t chunk = 0) {
  SequenceState s(m.state_spec());
  SequenceState* sp = &s;
  const size_t V = size_t(m.info().vocab_size), step = chunk ? chunk : ids.size();
  std::vector<float> out(ids.size() * V);
  for (size_t i = 0; i < ids.size(); i += step) {
    const size_t n = std::min(step, ids.size() - i);
    m.forward(Batch::single({ids.data() + i, n}), {&sp, 1}, out.data() + i * V, Logits::All);
  }
  return out;
}

int32_t argmax(const float* row, int64_t n) { return int32_t(std::max_element(row, row + n) - row); }

std::vector<int32_t> greedy(const Model& m, const std::vector<int32_t>& prompt, int n) {
  SequenceState s(m.state_spec());
  SequenceState* sp = &s;
  std::vector<float> row(size_t(m.info().vocab_size));
  m.forward(Batch::single(prompt), {&sp, 1}, row.data(), Logits::Last);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t next = argmax(row.data(), int64_t(row.size()));
    out.push_back(next);
    m.forward(Batch::single({&next, 1}), {&sp, 1}, row.data(), Logits::Last);
  }
  return out;
}

// The larger of two errors, NaN where either is (std::max would drop a NaN error).
double worse(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }

// ‖x − ref‖ / ‖ref‖ over one position's V logits.
double position_rel(const float* x, const float* ref, int64_t V) {
  double d = 0, r = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double a = x[v], b = ref[v];
    d += (a - b) * (a - b), r += b * b;
  }
  return std::sqrt(d / std::max(r, 1e-30));
}

struct Measured {
  double rms_rel = 0, worst_rel = 0;
  int64_t positions = 0, top1 = 0, greedy_same = 0, greedy_total = 0;
};

// `chunk`: the quantized model's prompts in chunks of that many tokens (logits_all).
Measured compare(const Model& ref, const Model& q, const std::vector<Prompt>& prompts, size_t chunk = 0) {
  Measured m;
  const int64_t V = ref.info().vocab_size;
  double sum_sq = 0;
  for (const auto& p : prompts) {
    const auto a = logits_all(ref, p.ids), b = logits_all(q, p.ids, chunk);
    for (size_t t = 0; t < p.ids.size(); ++t) {
      const double rel = position_rel(&b[t * V], &a[t * V], V);
      sum_sq += rel * rel;
      m.worst_rel = worse(m.worst_rel, rel);
      m.top1 += argmax(&a[t * V], V) == argmax(&b[t * V], V);
      ++m.positions;
    }
    const auto ga = greedy(ref, p.ids, 16), gb = greedy(q, p.ids, 16);
    size_t same = 0;
    while (same < ga.size() && ga[same] == gb[same]) ++same;
    m.greedy_same += int64_t(same);
    m.greedy_total += int64_t(ga.size());
  }
  m.rms_rel = std::sqrt(sum_sq / double(m.positions));
  return m;
}

// The quantized folder `q` with every tensor as float32 (quantized ones dequantized), written to `out`.
void write_dequantized(const fs::path& q, const fs::path& out) {
  fs::create_directories(out);
  fs::copy_file(q / "config.json", out / "config.json");
  const SafetensorsDir files(q.string());
  SafetensorsWriter w((out / "model.safetensors").string(), {{"format", "pt"}});
  for (const auto& name : files.names()) {
    const auto& e = files.entry(name);
    w.declare(name, "F32", e.shape, size_t(shape_numel(e.shape)) * 4);
  }
  w.begin();
  for (const auto& name : files.names()) {
    const Tensor t = Tensor::to_f32(files.get(name));
    w.write(t.f32(), t.nbytes());
  }
  w.finish();
}

double worst_rel(const Model& a, const Model& b, const std::vector<Prompt>& prompts) {
  double worst = 0;
  const int64_t V = a.info().vocab_size;
  for (const auto& p : prompts) {
    const auto x = logits_all(a, p.ids), y = logits_all(b, p.ids);
    for (size_t t = 0; t < p.ids.size(); ++t) worst = worse(worst, position_rel(&x[t * V], &y[t * V], V));
  }
  return worst;
}

// `linfer eval` of the demo's validation snippet as one window (tests/golden/demo/eval.json's setting).
// `global`: options before the command; `extra`: eval's own (--ubatch 16 keeps the products decode-sized).
double eval_nats(const fs::path& model, const std::string& global = "", const std::string& extra = "") {
  const fs::path text = kGolden / "demo/val_snippet.txt";
  const CliRun r = run_linfer(global + "eval --model " + model.string() + " --text-file " + text.string() +
                                  " --window 1180" + extra,
                              "");
  double nats = NAN;
  if (r.status != 0 || std::sscanf(r.out.c_str(), "%lf nats/token", &nats) != 1) ADD_FAILURE() << r.out;
  return nats;
}

class QuantAccuracy : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantAccuracy, LogitErrorAndGreedyAgreement) {
  const fs::path fixture = kGolden / GetParam();
  const fs::path src = model_of(fixture);
  const auto prompts = prompts_of(fixture);
  ASSERT_FALSE(prompts.empty()) << fixture << "/cases.json lists no cases";
  const auto ref = Model::load(src.string());
  const fs::path tmp = fs::temp_directory_path() / ("linfer_quant_acc_" + std::to_string(::getpid()) + "_" + GetParam());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  // int8 activations (linfer/core/quant_activations.h) exist where their kernels run: x86-64 with AVX2
  const bool q8_kernels_run = LINFER_X86 && simd_level() != SimdLevel::Scalar;
  for (const char* type : {"q8_0", "q4_0", "q4_k"}) {
    const fs::path out = tmp / type;
    const std::string bits = std::string(type) == "q8_0" ? "8" : "4";
    const CliRun r = run_linfer("quantize --model " + src.string() + " --out " + out.string() + " --bits " + bits +
                                    " --type " + type,
                                "2>&1");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto q = Model::load(out.string());
    EXPECT_NE(q->fingerprint(), ref->fingerprint()) << "a quantized model must not share the bf16 model's fingerprint";
    const Measured m = compare(*ref, *q, prompts);
    std::printf("| %s | %s | %.4f | %.4f | %lld/%lld | %lld/%lld |\n", GetParam().c_str(), type, m.rms_rel, m.worst_rel,
                (long long)m.top1, (long long)m.positions, (long long)m.greedy_same, (long long)m.greedy_total);
    EXPECT_TRUE(std::isfinite(m.worst_rel)) << type << ": logits that are not finite";
    if (GetParam() == "demo") {
      EXPECT_LT(m.rms_rel, bits == "8" ? 0.02 : 0.15) << type;
      // nats/token on the validation snippet (docs/quantization.md's table), against the bf16 model's
      const double q_nats = eval_nats(out), ref_nats = eval_nats(src);
      std::printf("demo %s: %.6f nats/token (bf16 %.6f)\n", type, q_nats, ref_nats);
      EXPECT_LT(std::fabs(q_nats - ref_nats), bits == "8" ? 0.005 : 0.05) << type;
    }
    if (q8_kernels_run) {  // the same weights against int8 activations (--activations q8)
      set_quant_activations(QuantActivations::Q8);
      const Measured a = compare(*ref, *q, prompts, 16);
      set_quant_activations(QuantActivations::F32);
      std::printf("| %s | %s, q8 activations | %.4f | %.4f | %lld/%lld | %lld/%lld |\n", GetParam().c_str(), type,
                  a.rms_rel, a.worst_rel, (long long)a.top1, (long long)a.positions, (long long)a.greedy_same,
                  (long long)a.greedy_total);
      EXPECT_TRUE(std::isfinite(a.worst_rel)) << type << ", q8 activations: logits that are not finite";
      if (GetParam() == "demo") {
        EXPECT_LT(a.rms_rel, bits == "8" ? 0.02 : 0.15) << type << ", q8 activations";
        const double a_nats = eval_nats(out, "--activations q8 ", " --ubatch 16"), ref_nats = eval_nats(src);
        std::printf("demo %s, q8 activations: %.6f nats/token (bf16 %.6f)\n", type, a_nats, ref_nats);
        EXPECT_LT(std::fabs(a_nats - ref_nats), bits == "8" ? 0.005 : 0.05) << type << ", q8 activations";
      }
    }
    write_dequantized(out, tmp / (std::string(type) + "_f32"));
    const auto deq = Model::load((tmp / (std::string(type) + "_f32")).string());
    EXPECT_LT(worst_rel(*q, *deq, prompts), 1e-3) << GetParam() << " " << type
                                                  << ": the quantized kernels differ from dequantize-then-multiply";
  }
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantAccuracy,
                         ::testing::Values("demo", "kimi_linear_a", "kimi_linear_b", "qwen3_next_a", "qwen3_next_b",
                                           "mamba2_a", "mamba2_b"));

}  // namespace
