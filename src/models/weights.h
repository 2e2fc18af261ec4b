#pragma once
// A checkpoint's tensors as the model loader takes them: every tensor taken is recorded, so that
// after loading, a tensor nobody took (a typo'd name, a layer the config does not describe) is an
// error instead of being silently ignored. Names may have alternatives (published vs transformers
// layouts): the first one present wins.
//
//   WeightStore ws(path);                                 // folder or .gguf (models/checkpoint.h)
//   TensorView w = ws.take(prefix + "q_proj.weight", {n, hidden});
//   Tensor a = ws.take_f32(prefix + "A_log", H);          // any shape with H elements -> float32 [H]
//   ws.check_all_taken(ignorable_prefixes, ignorable_suffixes);

#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <memory>

#include "linfer/core/tensor.h"
#include "models/checkpoint.h"

namespace linfer {

class WeightStore {
 public:
  explicit WeightStore(const std::string& path) : WeightStore(Checkpoint::open(path)) {}
  explicit WeightStore(std::unique_ptr<Checkpoint> checkpoint) : ck_(std::move(checkpoint)) {}

  const Checkpoint& files() const { return *ck_; }
  bool has(const std::string& name) const { return ck_->has(name); }
  // The first of `names` present, or nullopt.
  std::optional<std::string> first_present(std::initializer_list<std::string> names) const;

  // A weight of exactly this shape (f32 / bf16 / f16), as stored (no copy).
  TensorView take(const std::string& name, const Shape& shape);
  std::optional<TensorView> take_opt(const std::string& name, const Shape& shape);
  // Any shape with `numel` elements, converted to float32 (small per-channel parameters that
  // different writers store as [H], [H, 1] or [1, 1, H, 1]).
  Tensor take_f32(const std::string& name, int64_t numel);
  // The first present of `names` (error naming all of them if none is).
  std::string pick(std::initializer_list<std::string> names) const;

  // Throws naming the unused tensors (and their file) unless each matches an ignorable prefix or
  // suffix.
  void check_all_taken(const std::vector<std::string>& ignorable_prefixes,
                       const std::vector<std::string>& ignorable_suffixes) const;

 private:
  std::unique_ptr<Checkpoint> ck_;
  std::set<std::string> taken_;
};

}  // namespace linfer
