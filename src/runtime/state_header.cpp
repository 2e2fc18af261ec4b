// The state header body: JSON, self-describing, validated field by field on read (docs/state-format.md).

#include <nlohmann/json.hpp>

#include <limits>

#include "runtime/state_format.h"
#include "runtime/state_wire.h"

namespace linfer {

std::string short_fingerprint(const std::string& fp) {
  if (fp.empty()) return "<none>";
  // Model fingerprints are "arch-hash", short enough to show whole; cut only unusually long ones.
  return fp.size() <= 40 ? fp : fp.substr(0, 32) + "...";
}

const char* state_kind_name(StateKind k) {
  switch (k) {
    case StateKind::Fixed: return "fixed";
    case StateKind::Growing: return "growing";
    case StateKind::Ring: return "ring";
  }
  return "?";
}

namespace wire {

uint64_t tensor_raw_bytes(const StateTensorHeader& t, const std::string& source) {
  uint64_t n = uint64_t(dtype_size(t.dtype));
  bool overflow = t.rows < 0 || __builtin_mul_overflow(n, uint64_t(t.rows), &n);
  for (int64_t d : t.shape) overflow = overflow || d < 0 || __builtin_mul_overflow(n, uint64_t(d), &n);
  LINFER_CHECK(!overflow, "{}: state tensor layer {} '{}': size of {} rows of {} overflows", source,
               t.layer, t.name, t.rows, shape_str(t.shape));
  return n;
}

std::string header_json(const StateHeader& h) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : h.tensors) {
    tensors.push_back({{"layer", t.layer},
                       {"name", t.name},
                       {"kind", state_kind_name(t.kind)},
                       {"shape", t.shape},
                       {"capacity", t.capacity},
                       {"rows", t.rows},
                       {"layout", t.layout},
                       {"dtype", std::string(dtype_name(t.dtype))},
                       {"compression", t.compressed ? "zstd" : "none"},
                       {"bytes", t.raw_bytes}});
  }
  nlohmann::json j = {{"model", h.model_fingerprint},
                      {"tokenizer", h.tokenizer_fingerprint},
                      {"n_tokens", h.n_tokens},
                      {"tensors", tensors},
                      {"logits", {{"vocab", h.logits_vocab},
                                  {"compression", h.logits_compressed ? "zstd" : "none"}}}};
  return j.dump();
}

namespace {

// Typed access to one JSON object whose errors name the source and the field.
struct Fields {
  const nlohmann::json& j;
  std::string where;  // "s.lstate: header" or "s.lstate: header tensor 3"

  const nlohmann::json& at(const char* key) const {
    auto it = j.find(key);
    LINFER_CHECK(it != j.end(), "{}: missing field '{}'", where, key);
    return *it;
  }
  int64_t integer(const char* key, int64_t lo, int64_t hi) const {
    const auto& v = at(key);
    LINFER_CHECK(v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)),
                 "{}: field '{}' is not an integer in range", where, key);
    int64_t x = v.get<int64_t>();
    LINFER_CHECK(x >= lo && x <= hi, "{}: field '{}' = {} is out of range [{}, {}]", where, key, x, lo, hi);
    return x;
  }
  std::string string(const char* key) const {
    const auto& v = at(key);
    LINFER_CHECK(v.is_string(), "{}: field '{}' is not a string", where, key);
    return v.get<std::string>();
  }
};

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

}  // namespace

StateHeader parse_header_json(const std::string& text, const std::string& source) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  LINFER_CHECK(!j.is_discarded() && j.is_object(), "{}: state header is not a JSON object", source);
  Fields f{j, source + ": state header"};
  StateHeader h;
  h.model_fingerprint = f.string("model");
  h.tokenizer_fingerprint = f.string("tokenizer");
  h.n_tokens = f.integer("n_tokens", 0, kMaxI64);
  const auto& ts = f.at("tensors");
  LINFER_CHECK(ts.is_array(), "{}: field 'tensors' is not a list", f.where);
  for (size_t i = 0; i < ts.size(); ++i) {
    LINFER_CHECK(ts[i].is_object(), "{} tensor {}: not an object", f.where, i);
    Fields g{ts[i], fmt::format("{} tensor {}", f.where, i)};
    StateTensorHeader t;
    t.layer = int(g.integer("layer", 0, std::numeric_limits<int>::max()));
    t.name = g.string("name");
    std::string kind = g.string("kind");
    if (kind == "fixed") t.kind = StateKind::Fixed;
    else if (kind == "growing") t.kind = StateKind::Growing;
    else if (kind == "ring") t.kind = StateKind::Ring;
    else fail("{}: unknown kind '{}'", g.where, kind);
    const auto& shape = g.at("shape");
    LINFER_CHECK(shape.is_array() && shape.size() <= 8, "{}: 'shape' is not a list of at most 8 dims",
                 g.where);
    for (const auto& d : shape) {
      LINFER_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= uint64_t(kMaxI64),
                   "{}: 'shape' has a bad dimension {}", g.where, d.dump());
      t.shape.push_back(d.get<int64_t>());
    }
    t.capacity = g.integer("capacity", 0, kMaxI64);
    t.rows = g.integer("rows", 0, kMaxI64);
    t.layout = g.string("layout");
    std::string dtype = g.string("dtype");
    if (dtype == "f32") t.dtype = DType::F32;
    else if (dtype == "bf16") t.dtype = DType::BF16;
    else fail("{}: unsupported state dtype '{}' (f32 or bf16)", g.where, dtype);
    std::string comp = g.string("compression");
    LINFER_CHECK(comp == "none" || comp == "zstd", "{}: unknown compression '{}'", g.where, comp);
    t.compressed = comp == "zstd";
    t.raw_bytes = uint64_t(g.integer("bytes", 0, kMaxI64));

    switch (t.kind) {
      case StateKind::Fixed:
        LINFER_CHECK(t.rows == 1 && t.capacity == 0, "{}: a fixed tensor has rows 1 and capacity 0",
                     g.where);
        break;
      case StateKind::Growing:
        LINFER_CHECK(t.rows <= h.n_tokens && t.capacity == 0,
                     "{}: a growing tensor has at most n_tokens ({}) rows and capacity 0", g.where,
                     h.n_tokens);
        break;
      case StateKind::Ring:
        LINFER_CHECK(t.capacity > 0 && t.rows == std::min(h.n_tokens, t.capacity),
                     "{}: a ring of capacity {} after {} tokens holds min(tokens, capacity) rows, not {}",
                     g.where, t.capacity, h.n_tokens, t.rows);
        break;
    }
    LINFER_CHECK(t.raw_bytes == tensor_raw_bytes(t, source),
                 "{}: 'bytes' = {} disagrees with {} rows of {} {}", g.where, t.raw_bytes, t.rows,
                 shape_str(t.shape), dtype_name(t.dtype));
    if (!h.tensors.empty()) {
      const auto& prev = h.tensors.back();
      LINFER_CHECK(prev.layer < t.layer || (prev.layer == t.layer && prev.name < t.name),
                   "{}: tensors are not in (layer, name) order", g.where);
    }
    h.tensors.push_back(std::move(t));
  }
  const auto& lg = f.at("logits");
  LINFER_CHECK(lg.is_object(), "{}: field 'logits' is not an object", f.where);
  Fields l{lg, f.where + " logits"};
  h.logits_vocab = l.integer("vocab", 0, int64_t(1) << 32);
  std::string comp = l.string("compression");
  LINFER_CHECK(comp == "none" || comp == "zstd", "{}: unknown compression '{}'", l.where, comp);
  h.logits_compressed = comp == "zstd";
  return h;
}

}  // namespace wire
}  // namespace linfer
