#include "models/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "linfer/core/error.h"

namespace linfer {

std::optional<std::string> WeightStore::first_present(std::initializer_list<std::string> names) const {
  for (const auto& n : names)
    if (ck_->has(n)) return n;
  return std::nullopt;
}

std::string WeightStore::pick(std::initializer_list<std::string> names) const {
  if (auto n = first_present(names)) return *n;
  fail("tensor {} not found in {}", fmt::join(names, " / "), ck_->dir());
}

TensorView WeightStore::take(const std::string& name, const Shape& shape) {
  TensorView v = ck_->get(name, shape);
  taken_.insert(name);
  return v;
}

std::optional<TensorView> WeightStore::take_opt(const std::string& name, const Shape& shape) {
  if (!ck_->has(name)) return std::nullopt;
  return take(name, shape);
}

Tensor WeightStore::take_f32(const std::string& name, int64_t numel) {
  TensorView v = ck_->get(name);
  LINFER_CHECK(v.numel() == numel, "tensor '{}' in {}: expected {} elements, found shape {}", name,
               ck_->file_of(name), numel, shape_str(v.shape()));
  LINFER_CHECK(v.dtype() == DType::F32 || v.dtype() == DType::BF16 || v.dtype() == DType::F16,
               "tensor '{}' in {}: expected a floating-point tensor, found {}", name, ck_->file_of(name),
               dtype_name(v.dtype()));
  taken_.insert(name);
  return Tensor::to_f32(v.reshape({numel}));
}

void WeightStore::check_all_taken(const std::vector<std::string>& ignorable_prefixes,
                                  const std::vector<std::string>& ignorable_suffixes) const {
  std::vector<std::string> unused;
  for (const auto& name : ck_->names()) {
    if (taken_.count(name)) continue;
    bool ignorable = false;
    for (const auto& p : ignorable_prefixes) ignorable |= name.rfind(p, 0) == 0;
    for (const auto& s : ignorable_suffixes)
      ignorable |= name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    if (!ignorable) unused.push_back(fmt::format("'{}' ({})", name, ck_->file_of(name)));
  }
  if (unused.empty()) return;
  const size_t shown = std::min<size_t>(unused.size(), 8);
  fail("{}: {} unexpected tensor(s) that this model's config.json does not use: {}{}", ck_->dir(), unused.size(),
       fmt::join(unused.begin(), unused.begin() + shown, ", "), unused.size() > shown ? ", ..." : "");
}

}  // namespace linfer
