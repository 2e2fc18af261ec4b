#pragma once
// The golden fixtures' cases (tests/golden/<fixture>/cases.json and the transformers logits each case
// names) and what the golden tests measure logits with. Shared by tests/golden and tests/cuda/models.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "linfer/model.h"

namespace linfer::test {

// The fixtures: tests/golden/<fixture>/ (an HF folder, cases.json, transformers' logits) and gguf/.
inline const std::filesystem::path kGolden = std::filesystem::path(LINFER_SOURCE_DIR) / "tests" / "golden";

struct GoldenCase {
  std::string name;
  std::vector<int32_t> prompt, greedy;
  Tensor logits;  // transformers', [T, vocab]
};

inline nlohmann::json read_cases_json(const std::filesystem::path& dir) {
  std::ifstream f(dir / "cases.json");
  return nlohmann::json::parse(f);
}

// The cases of `j` (dir's cases.json), logits read from `dir`. Throws (json::out_of_range naming the key)
// when a case lacks a field.
inline std::vector<GoldenCase> golden_cases(const std::filesystem::path& dir, const nlohmann::json& j) {
  std::vector<GoldenCase> out;
  for (const auto& c : j.at("cases"))
    out.push_back({c.at("name"), c.at("prompt_ids").get<std::vector<int32_t>>(),
                   c.at("greedy_ids").get<std::vector<int32_t>>(),
                   Tensor::to_f32(read_npy((dir / c.at("logits").get<std::string>()).string()))});
  return out;
}

inline std::vector<GoldenCase> golden_cases(const std::filesystem::path& dir) {
  return golden_cases(dir, read_cases_json(dir));
}

// Logits at every position of `ids`, from a fresh state: [ids.size(), vocab].
inline std::vector<float> full_logits(const Model& m, const std::vector<int32_t>& ids) {
  SequenceState s(m.state_spec());
  SequenceState* sp = &s;
  std::vector<float> out(ids.size() * size_t(m.info().vocab_size));
  m.forward(Batch::single(ids), {&sp, 1}, out.data(), Logits::All);
  return out;
}

// Max over rows of ‖got − ref‖ / ‖ref‖.
inline double max_rel_err(const float* got, const float* ref, int64_t rows, int64_t vocab) {
  double worst = 0;
  for (int64_t t = 0; t < rows; ++t) {
    double d = 0, r = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      const double a = got[t * vocab + v], b = ref[t * vocab + v];
      d += (a - b) * (a - b);
      r += b * b;
    }
    worst = std::max(worst, std::sqrt(d / std::max(r, 1e-30)));
  }
  return worst;
}

inline int32_t argmax(const float* row, int64_t n) { return int32_t(std::max_element(row, row + n) - row); }

// Greedy decoding: prefill `prompt` on a fresh state, then `n` tokens one step at a time, each the argmax
// of the previous logits.
inline std::vector<int32_t> greedy_ids(const Model& m, const std::vector<int32_t>& prompt, size_t n) {
  SequenceState s(m.state_spec());
  SequenceState* sp = &s;
  const int64_t V = m.info().vocab_size;
  std::vector<float> row(static_cast<size_t>(V));
  m.forward(Batch::single(prompt), {&sp, 1}, row.data(), Logits::Last);
  std::vector<int32_t> got;
  for (size_t i = 0; i < n; ++i) {
    int32_t next = argmax(row.data(), V);
    got.push_back(next);
    m.forward(Batch::single({&next, 1}), {&sp, 1}, row.data(), Logits::Last);
  }
  return got;
}

}  // namespace linfer::test
