#include "models/gguf_checkpoint.h"

#include <cctype>
#include <cmath>

#include <fmt/ranges.h>

#include "linfer/core/error.h"

namespace linfer {

namespace {

struct Mapping {
  const char* gguf_arch;   // general.architecture as llama.cpp names it
  nlohmann::json (*map)(GgufMapper&);
};

constexpr Mapping kMappings[] = {
    {"kimi-linear", kimi_linear_from_gguf},
    {"qwen3next", qwen3_next_from_gguf},
    {"mamba2", mamba2_from_gguf},
};

Checkpoint::Entry entry_of(const std::string& file, const GgufTensorInfo& t, const TensorView& v) {
  return {file, t.type->name, v.dtype(), v.shape(), {static_cast<const std::byte*>(v.data()), v.nbytes()}};
}

}  // namespace

std::unique_ptr<Checkpoint> open_gguf_checkpoint(const std::string& path) {
  auto file = std::make_shared<const GgufFile>(path);
  const std::string arch = file->header().get_string("general.architecture");
  for (const auto& mp : kMappings) {
    if (arch != mp.gguf_arch) continue;
    auto ck = std::make_unique<Checkpoint>(path, "", path);
    GgufMapper m(file, *ck);
    const nlohmann::json config = mp.map(m);
    m.check_all_used();
    ck->set_config(config.dump(2), path + " (its metadata as config.json)");
    ck->keep(file);
    return ck;
  }
  std::vector<std::string> known;
  for (const auto& mp : kMappings) known.emplace_back(mp.gguf_arch);
  fail("{}: general.architecture '{}' is not supported (linfer reads GGUF files of: {})", path, arch,
       fmt::join(known, ", "));
}

GgufMapper::GgufMapper(std::shared_ptr<const GgufFile> file, Checkpoint& out)
    : file_(std::move(file)), out_(out), arch_(file_->header().get_string("general.architecture")) {}

void GgufMapper::alias(const std::string& gguf, const std::string& hf, std::optional<Shape> shape) {
  const GgufTensorInfo& t = info(gguf);
  TensorView v = file_->view(t);
  if (shape) {
    LINFER_CHECK(shape_numel(*shape) == v.numel(), "{}: tensor '{}' has shape {}; expected {} elements ({})", label(),
                 gguf, shape_str(v.shape()), shape_numel(*shape), shape_str(*shape));
    v = v.reshape(*shape);
  }
  out_.add(hf, entry_of(label(), t, v), v);
  used_.insert(gguf);
}

void GgufMapper::alias_layer(int64_t layer, const std::string& hf_prefix,
                             std::initializer_list<std::pair<const char*, const char*>> names) {
  for (const auto& [g, h] : names)
    if (has(blk(layer, g))) alias(blk(layer, g), hf_prefix + h);
}

void GgufMapper::split_experts(const std::string& gguf, const std::string& hf_pattern) {
  const GgufTensorInfo& t = info(gguf);
  LINFER_CHECK(t.shape.size() == 3, "{}: tensor '{}' has shape {}; expected [experts, rows, cols]", label(), gguf,
               shape_str(t.shape));
  const TensorView all = file_->view(t);
  for (int64_t e = 0; e < t.shape[0]; ++e) {
    const TensorView v = all.slice0(e, e + 1).reshape({t.shape[1], t.shape[2]});
    out_.add(fmt::format(fmt::runtime(hf_pattern), e), entry_of(label(), t, v), v);
  }
  used_.insert(gguf);
}

void GgufMapper::owned(const std::vector<std::string>& sources, const std::string& hf, Tensor t) {
  for (const auto& s : sources) used_.insert(s);
  const TensorView v = t.view();
  Checkpoint::Entry e{label(), std::string(dtype_name(v.dtype())), v.dtype(), v.shape(),
                      {static_cast<const std::byte*>(v.data()), v.nbytes()}};
  for (auto& c : e.dtype_name) c = char(std::toupper(static_cast<unsigned char>(c)));
  out_.add(hf, std::move(e), v);
  out_.keep(std::make_shared<Tensor>(std::move(t)));
}

void GgufMapper::check_all_used() const {
  std::vector<std::string> unused;
  for (const auto& t : meta().tensors) {
    if (used_.count(t.name)) continue;
    bool ignorable = false;
    for (const auto& p : ignored_) ignorable |= t.name.rfind(p, 0) == 0;
    if (!ignorable) unused.push_back("'" + t.name + "'");
  }
  if (unused.empty()) return;
  const size_t shown = std::min<size_t>(unused.size(), 8);
  fail("{}: {} tensor(s) that linfer's {} mapping does not use: {}{}", label(), unused.size(), arch_,
       fmt::join(unused.begin(), unused.begin() + shown, ", "), unused.size() > shown ? ", ..." : "");
}

Tensor a_log_from_a(const Tensor& a, const std::string& what) {
  Tensor out = Tensor::zeros(a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float v = a.f32()[i];
    LINFER_CHECK(v < 0 && std::isfinite(v), "{}: A[{}] = {} (the converter stores -exp(A_log) < 0)", what, i, v);
    out.f32()[i] = std::log(-v);
  }
  return out;
}

nlohmann::json common_config(const GgufMapper& m, const std::string& model_type) {
  const GgufHeader& h = m.meta();
  nlohmann::json c;
  c["model_type"] = model_type;
  c["hidden_size"] = h.get_int(m.key("embedding_length"));
  const GgufTensorInfo& embd = m.info("token_embd.weight");
  LINFER_CHECK(embd.shape.size() == 2 && embd.shape[1] == c["hidden_size"].get<int64_t>(),
               "{}: token_embd.weight has shape {}; expected [vocab, {}]", m.label(), shape_str(embd.shape),
               c["hidden_size"].get<int64_t>());
  c["vocab_size"] = embd.shape[0];
  c["tie_word_embeddings"] = !m.has("output.weight");
  if (auto bos = h.opt_int("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  if (auto eos = h.opt_int("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
  return c;
}

}  // namespace linfer
