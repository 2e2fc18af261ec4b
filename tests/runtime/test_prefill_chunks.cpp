// forward_chunked (runtime/prefill_chunks.h) against one forward pass, on the demo model and every golden
// fixture (the three architectures; Kimi Linear and Qwen3-Next with attention caches beside their
// recurrent states). The prompt is every case's prompt of the fixture, concatenated (513 tokens; the
// demo: 364). In chunks of 1, 7, 64 and 100 tokens it must give:
//   - the one pass's logits at every position (Logits::All) and at the last (Logits::Last), within 1e-4
//     relative (‖Δ‖ / ‖ref‖ per row);
//   - the one pass's final state: the same token count and cache rows, every tensor within 1e-4 relative.
// Chunk boundaries move the chunked kernels' blocks and a 1-token chunk runs the step kernels, so the
// results are not bit-identical: each check prints its measured difference. A chunk of 0 or of the
// whole prompt is the one pass, bit for bit. Also: the slot overload gives the host overload's numbers;
// a state that already holds tokens continues the same way; an id outside the vocabulary anywhere in the
// prompt is refused before the first chunk changes the state.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linfer/core/error.h"
#include "linfer/model.h"
#include "runtime/prefill_chunks.h"

namespace fs = std::filesystem;
using namespace linfer;

namespace {

constexpr double kTol = 1e-4;
const fs::path kGolden = fs::path(LINFER_SOURCE_DIR) / "tests" / "golden";

nlohmann::json cases_json(const std::string& fixture) {
  std::ifstream f(kGolden / fixture / "cases.json");
  return nlohmann::json::parse(f);
}

// Fixture folders whose cases.json names a model (tests/golden/demo points at models/demo).
std::vector<std::string> fixtures() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kGolden)) {
    if (!fs::exists(e.path() / "cases.json")) continue;
    if (cases_json(e.path().filename().string()).contains("model_type")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ‖a − b‖ / ‖b‖ (0 when both are zero).
double rel_err(const float* a, const float* b, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    r += double(b[i]) * b[i];
  }
  return d == 0 ? 0 : std::sqrt(d / std::max(r, 1e-300));
}

// Worst rel_err over the rows of [rows, vocab] logits.
double worst_row_err(const std::vector<float>& got, const std::vector<float>& ref, int64_t vocab) {
  double worst = 0;
  for (size_t t = 0; t * size_t(vocab) < ref.size(); ++t)
    worst = std::max(worst, rel_err(got.data() + t * vocab, ref.data() + t * vocab, vocab));
  return worst;
}

// Worst rel_err over the state's tensors; -1 when the token counts or shapes differ.
double state_err(const SequenceState& got, const SequenceState& ref) {
  if (got.n_tokens() != ref.n_tokens() || got.n_tensors() != ref.n_tensors()) return -1;
  double worst = 0;
  for (size_t i = 0; i < ref.n_tensors(); ++i) {
    if (got.shape(i) != ref.shape(i)) return -1;
    const auto& t = ref.spec().tensors[i];
    const int64_t rows = t.kind == StateKind::Ring ? t.capacity : ref.rows(i);
    worst = std::max(worst, rel_err(got.data(i), ref.data(i), rows * ref.row_elems(i)));
  }
  return worst;
}

bool same_bits(const SequenceState& a, const SequenceState& b) {
  if (state_err(a, b) != 0) return false;
  for (size_t i = 0; i < a.n_tensors(); ++i) {
    const auto& t = a.spec().tensors[i];
    const int64_t rows = t.kind == StateKind::Ring ? t.capacity : a.rows(i);
    if (std::memcmp(a.data(i), b.data(i), size_t(rows * a.row_elems(i)) * sizeof(float)) != 0) return false;
  }
  return true;
}

class PrefillChunks : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto j = cases_json(GetParam());
    const fs::path dir = j.contains("model_dir") ? fs::path(LINFER_SOURCE_DIR) / j["model_dir"].get<std::string>()
                                                 : kGolden / GetParam();
    model_ = Model::load(dir.string());
    V_ = model_->info().vocab_size;
    for (const auto& c : j.at("cases"))
      for (int32_t id : c.at("prompt_ids").get<std::vector<int32_t>>()) ids_.push_back(id);
    ASSERT_GT(ids_.size(), 300u) << GetParam() << ": the cases' prompts should add up to a few chunks of 100";
  }

  // One pass from `start`: logits at every position and the final state.
  std::pair<std::vector<float>, SequenceState> one_pass(const SequenceState& start, std::span<const int32_t> ids) const {
    SequenceState s = start;
    SequenceState* sp = &s;
    std::vector<float> logits(ids.size() * size_t(V_));
    model_->forward(Batch::single(ids), {&sp, 1}, logits.data(), Logits::All);
    return {std::move(logits), std::move(s)};
  }

  std::shared_ptr<const Model> model_;
  int64_t V_ = 0;
  std::vector<int32_t> ids_;
};

TEST_P(PrefillChunks, ChunksMatchOnePass) {
  const SequenceState empty(model_->state_spec());
  const auto [ref, ref_state] = one_pass(empty, ids_);
  for (int64_t ubatch : {1, 7, 64, 100}) {
    SequenceState s = empty;
    std::vector<float> all(ref.size()), last(static_cast<size_t>(V_));
    forward_chunked(*model_, ids_, s, all.data(), Logits::All, ubatch);
    const double e_all = worst_row_err(all, ref, V_), e_state = state_err(s, ref_state);
    SequenceState s2 = empty;
    forward_chunked(*model_, ids_, s2, last.data(), Logits::Last, ubatch);
    const double e_last = rel_err(last.data(), ref.data() + (ids_.size() - 1) * size_t(V_), V_);
    std::printf("%s, %zu tokens, ubatch %3lld: logits (all) %.2e, logits (last) %.2e, state %.2e\n",
                GetParam().c_str(), ids_.size(), static_cast<long long>(ubatch), e_all, e_last, e_state);
    EXPECT_LE(e_all, kTol) << GetParam() << " ubatch " << ubatch;
    EXPECT_LE(e_last, kTol) << GetParam() << " ubatch " << ubatch;
    EXPECT_GE(e_state, 0) << GetParam() << " ubatch " << ubatch << ": token count or cache rows differ";
    EXPECT_LE(e_state, kTol) << GetParam() << " ubatch " << ubatch;
    EXPECT_LE(state_err(s2, ref_state), kTol) << GetParam() << " ubatch " << ubatch << " (Logits::Last)";
  }
}

TEST_P(PrefillChunks, ZeroOrWholePromptIsOnePass) {
  const SequenceState empty(model_->state_spec());
  const auto [ref, ref_state] = one_pass(empty, ids_);
  for (int64_t ubatch : {int64_t(0), int64_t(ids_.size()), int64_t(ids_.size()) + 1}) {
    SequenceState s = empty;
    std::vector<float> all(ref.size());
    forward_chunked(*model_, ids_, s, all.data(), Logits::All, ubatch);
    EXPECT_EQ(all, ref) << GetParam() << " ubatch " << ubatch;
    EXPECT_TRUE(same_bits(s, ref_state)) << GetParam() << " ubatch " << ubatch;
  }
}

TEST_P(PrefillChunks, SlotsGiveTheHostStateNumbers) {
  const SequenceState empty(model_->state_spec());
  SequenceState host = empty;
  std::vector<float> want(static_cast<size_t>(V_)), got(static_cast<size_t>(V_));
  forward_chunked(*model_, ids_, host, want.data(), Logits::Last, 7);
  auto slots = model_->make_slots(2);
  forward_chunked(*model_, ids_, *slots, 1, got.data(), Logits::Last, 7);
  EXPECT_EQ(got, want) << GetParam();
  SequenceState saved = empty;
  slots->save(1, saved);
  EXPECT_TRUE(same_bits(saved, host)) << GetParam();
  EXPECT_EQ(slots->n_tokens(0), 0) << GetParam() << ": another slot was advanced";
}

// A state that already holds a prefix (generate --load-state, then a prompt) continues in chunks too.
TEST_P(PrefillChunks, ContinuesAStateThatHoldsTokens) {
  const size_t prefix = 37;
  SequenceState start(model_->state_spec());
  SequenceState* sp = &start;
  model_->forward(Batch::single({ids_.data(), prefix}), {&sp, 1}, nullptr, Logits::None);
  const std::span<const int32_t> rest(ids_.data() + prefix, ids_.size() - prefix);
  const auto [ref, ref_state] = one_pass(start, rest);
  SequenceState s = start;
  std::vector<float> all(ref.size());
  forward_chunked(*model_, rest, s, all.data(), Logits::All, 64);
  EXPECT_LE(worst_row_err(all, ref, V_), kTol) << GetParam();
  EXPECT_EQ(s.n_tokens(), int64_t(ids_.size())) << GetParam();
  EXPECT_LE(state_err(s, ref_state), kTol) << GetParam();
}

TEST_P(PrefillChunks, BadIdRefusedBeforeTheFirstChunk) {
  std::vector<int32_t> ids = ids_;
  ids.back() = int32_t(V_);  // in the last chunk
  SequenceState s(model_->state_spec());
  const SequenceState before = s;
  std::vector<float> logits(static_cast<size_t>(V_));
  try {
    forward_chunked(*model_, ids, s, logits.data(), Logits::Last, 64);
    FAIL() << GetParam() << ": an id outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(same_bits(s, before)) << GetParam() << ": the refused prompt changed the state";
  EXPECT_THROW(forward_chunked(*model_, ids_, s, logits.data(), Logits::Last, -1), Error);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PrefillChunks, ::testing::ValuesIn(fixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
