#pragma once
// What a checkpoint's weights are stored as, for `linfer inspect` and `linfer bench`: parameters and bytes
// per type, and the bits per weight of the whole file. Works on any store with names() and entry(name)
// giving dtype_name, dtype (optional) and shape (SafetensorsDir, Checkpoint).

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "linfer/core/dtype.h"
#include "linfer/core/error.h"
#include "linfer/core/tensor.h"
#include "models/checkpoint.h"

namespace linfer::cli {

struct WeightSummary {
  struct PerType {
    DType dtype = DType::F32;
    int tensors = 0;
    int64_t params = 0;
    double bytes = 0;
  };
  std::map<std::string, PerType> types;  // by dtype name ("bf16", "q4_k", ...)
  int64_t params = 0;
  double bytes = 0;

  bool known() const { return params > 0; }
  double bits_per_weight() const { return params ? 8.0 * bytes / double(params) : 0.0; }
  // "q4_k 62% + q4_0 26% + bf16 12% of parameters, 4.83 bits/weight"
  std::string line() const {
    std::string s;
    for (const auto& [p, name] : by_params())
      s += fmt::format("{}{} {:.0f}%", s.empty() ? "" : " + ", name, 100.0 * double(p) / double(params));
    return fmt::format("{} of parameters, {:.2f} bits/weight", s, bits_per_weight());
  }
  std::vector<DType> dtypes() const {
    std::vector<DType> v;
    for (const auto& [name, t] : types) v.push_back(t.dtype);
    return v;
  }
  // "q4_k+q4_0+bf16": the types, most parameters first.
  std::string types_short() const {
    std::string s;
    for (const auto& [p, name] : by_params()) s += (s.empty() ? "" : "+") + name;
    return s;
  }

 private:
  std::vector<std::pair<int64_t, std::string>> by_params() const {
    std::vector<std::pair<int64_t, std::string>> v;
    for (const auto& [name, t] : types) v.push_back({t.params, name});
    std::sort(v.rbegin(), v.rend());
    return v;
  }
};

template <class Files>
WeightSummary summarize_weights(const Files& files) {
  WeightSummary w;
  for (const auto& name : files.names()) {
    const auto& e = files.entry(name);
    if (!e.dtype) continue;
    const int64_t n = shape_numel(e.shape);
    auto& t = w.types[std::string(dtype_name(*e.dtype))];
    t.dtype = *e.dtype;
    ++t.tensors;
    t.params += n;
    t.bytes += double(dtype_nbytes(*e.dtype, n));
    w.params += n;
    w.bytes += double(dtype_nbytes(*e.dtype, n));
  }
  return w;
}

// The summary of a model folder's safetensors or a .gguf file's tensors as linfer loads them; empty (no
// types) where the path is neither.
inline WeightSummary summarize_folder(const std::string& path) {
  try {
    return summarize_weights(*Checkpoint::open(path));
  } catch (const Error&) {
    return {};
  }
}

}  // namespace linfer::cli
