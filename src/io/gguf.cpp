#include "io/gguf.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "linfer/core/error.h"

namespace linfer {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
constexpr int kMaxNesting = 8;           // arrays of arrays of ...: real files nest at most once
constexpr uint64_t kMaxKeyBytes = 65535; // the spec's limit on a key's length

// Every type ggml defines today, so that any file's sizes can be checked; only some map to DType
// (the block layouts of the quantized ones are GGUF's: core/quant_formats.h).
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4, DType::F32},        {1, "F16", 1, 2, DType::F16},
    {2, "Q4_0", 32, 18, DType::Q4_0},             {3, "Q4_1", 32, 20, DType::Q4_1},
    {6, "Q5_0", 32, 22, DType::Q5_0},             {7, "Q5_1", 32, 24, DType::Q5_1},
    {8, "Q8_0", 32, 34, DType::Q8_0},             {9, "Q8_1", 32, 40, {}},
    {10, "Q2_K", 256, 84, {}},           {11, "Q3_K", 256, 110, {}},
    {12, "Q4_K", 256, 144, DType::Q4_K},          {13, "Q5_K", 256, 176, DType::Q5_K},
    {14, "Q6_K", 256, 210, DType::Q6_K},          {15, "Q8_K", 256, 292, {}},
    {16, "IQ2_XXS", 256, 66, {}},        {17, "IQ2_XS", 256, 74, {}},
    {18, "IQ3_XXS", 256, 98, {}},        {19, "IQ1_S", 256, 50, {}},
    {20, "IQ4_NL", 32, 18, {}},          {21, "IQ3_S", 256, 110, {}},
    {22, "IQ2_S", 256, 82, {}},          {23, "IQ4_XS", 256, 136, {}},
    {24, "I8", 1, 1, {}},                {25, "I16", 1, 2, {}},
    {26, "I32", 1, 4, DType::I32},       {27, "I64", 1, 8, DType::I64},
    {28, "F64", 1, 8, DType::F64},       {29, "IQ1_M", 256, 56, {}},
    {30, "BF16", 1, 2, DType::BF16},     {34, "TQ1_0", 256, 54, {}},
    {35, "TQ2_0", 256, 66, {}},          {39, "MXFP4", 32, 17, {}},
};

// Reads little-endian fields from the file, refusing to step past its end.
struct Cursor {
  std::span<const std::byte> file;
  const std::string& label;
  size_t pos = 0;

  size_t left() const { return file.size() - pos; }
  void need(uint64_t n, const std::string& what) const {
    LINFER_CHECK(n <= left(), "{}: truncated: {} needs {} bytes at offset {} but the file ends {} bytes later", label,
                 what, n, pos, left());
  }
  uint64_t uint(int bytes, const std::string& what) {
    need(uint64_t(bytes), what);
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | uint64_t(file[pos + size_t(k)]);
    pos += size_t(bytes);
    return v;
  }
  std::string string(const std::string& what, uint64_t max_len = std::numeric_limits<uint64_t>::max()) {
    const uint64_t n = uint(8, what + " (length)");
    LINFER_CHECK(n <= max_len, "{}: {} is {} bytes long (at most {} allowed)", label, what, n, max_len);
    LINFER_CHECK(n <= left(), "{}: {} claims {} bytes at offset {} but the file ends {} bytes later", label, what, n,
                 pos, left());
    std::string s(reinterpret_cast<const char*>(file.data() + pos), size_t(n));
    pos += size_t(n);
    return s;
  }
};

// The least bytes one value of type t occupies (bounds element counts before reserving memory).
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::String: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  auto sign_extend = [](uint64_t x, int bytes) {
    const int shift = 64 - 8 * bytes;
    return int64_t(x << shift) >> shift;
  };
  switch (type) {
    case GgufType::U8: v.u = c.uint(1, key); break;
    case GgufType::U16: v.u = c.uint(2, key); break;
    case GgufType::U32: v.u = c.uint(4, key); break;
    case GgufType::U64: v.u = c.uint(8, key); break;
    case GgufType::I8: v.i = sign_extend(c.uint(1, key), 1); break;
    case GgufType::I16: v.i = sign_extend(c.uint(2, key), 2); break;
    case GgufType::I32: v.i = sign_extend(c.uint(4, key), 4); break;
    case GgufType::I64: v.i = int64_t(c.uint(8, key)); break;
    case GgufType::F32: {
      const auto bits = uint32_t(c.uint(4, key));
      float f;
      std::memcpy(&f, &bits, 4);
      v.f = f;
      break;
    }
    case GgufType::F64: {
      const uint64_t bits = c.uint(8, key);
      std::memcpy(&v.f, &bits, 8);
      break;
    }
    case GgufType::Bool: {
      const uint64_t b = c.uint(1, key);
      LINFER_CHECK(b <= 1, "{}: key '{}': bool value {} (expected 0 or 1)", c.label, key, b);
      v.i = int64_t(b);
      break;
    }
    case GgufType::String: v.str = c.string("key '" + key + "' (string value)"); break;
    case GgufType::Array: {
      LINFER_CHECK(depth < kMaxNesting, "{}: key '{}': arrays nested more than {} deep", c.label, key, kMaxNesting);
      const auto elem = uint32_t(c.uint(4, key + " (array element type)"));
      LINFER_CHECK(known_type(elem), "{}: key '{}': unknown array element type {}", c.label, key, elem);
      v.elem = GgufType(elem);
      const uint64_t n = c.uint(8, key + " (array length)");
      LINFER_CHECK(n <= c.left() / min_value_bytes(v.elem),
                   "{}: key '{}': array of {} {} elements cannot fit in the {} bytes left in the file", c.label, key, n,
                   gguf_type_name(v.elem), c.left());
      v.items.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.items.push_back(read_value(c, v.elem, key, depth + 1));
      break;
    }
  }
  return v;
}

int64_t checked_numel(const Shape& ne, const std::string& label, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : ne)
    LINFER_CHECK(!__builtin_mul_overflow(n, d, &n), "{}: tensor '{}': shape {} overflows", label, name, shape_str(ne));
  return n;
}

GgufTensorInfo read_tensor_info(Cursor& c, size_t index) {
  GgufTensorInfo t;
  t.name = c.string(fmt::format("tensor {} (name)", index), kMaxKeyBytes);
  const std::string who = "tensor '" + t.name + "'";
  const auto n_dims = uint32_t(c.uint(4, who + " (n_dims)"));
  LINFER_CHECK(n_dims >= 1 && n_dims <= kMaxDims, "{}: {}: {} dimensions (expected 1 to {})", c.label, who, n_dims,
               kMaxDims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t n = c.uint(8, who + " (dimension)");
    LINFER_CHECK(n <= uint64_t(std::numeric_limits<int64_t>::max()), "{}: {}: dimension {} = {} is out of range",
                 c.label, who, d, n);
    t.ne.push_back(int64_t(n));
  }
  const auto type = uint32_t(c.uint(4, who + " (type)"));
  t.type = find_ggml_type(type);
  LINFER_CHECK(t.type, "{}: {}: unknown ggml type {}", c.label, who, type);
  t.offset = c.uint(8, who + " (offset)");
  t.shape.assign(t.ne.rbegin(), t.ne.rend());
  checked_numel(t.ne, c.label, t.name);
  LINFER_CHECK(t.ne[0] % t.type->block == 0, "{}: {}: a row of {} elements is not a whole number of {}-element {} "
               "blocks", c.label, who, t.ne[0], t.type->block, t.type->name);
  return t;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

bool GgufValue::is_int() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

const GgmlType* find_ggml_type(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

double GgufTensorInfo::bits_per_weight() const {
  const int64_t n = numel();
  return n == 0 ? 0.0 : double(end - begin) * 8.0 / double(n);
}

// ---- parsing -----------------------------------------------------------------------------------

GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& label) {
  GgufHeader h;
  h.label = label;
  Cursor c{file, label};
  LINFER_CHECK(file.size() >= 24, "{}: {} bytes is too short for a GGUF file (the fixed header alone is 24)", label,
               file.size());
  const auto magic = uint32_t(c.uint(4, "magic"));
  LINFER_CHECK(magic == kMagic, "{}: not a GGUF file (the first 4 bytes are not \"GGUF\")", label);
  h.version = uint32_t(c.uint(4, "version"));
  LINFER_CHECK(h.version != 1, "{}: GGUF version 1 is not supported (convert the model again with a current llama.cpp)",
               label);
  LINFER_CHECK(h.version == 2 || h.version == 3, "{}: GGUF version {} is not supported (2 and 3 are; a big-endian "
               "file reads as a huge version: linfer reads little-endian files only)", label, h.version);
  const uint64_t n_tensors = c.uint(8, "tensor count");
  const uint64_t n_kv = c.uint(8, "metadata count");
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8 + 4 + 8 + 4 + 8.
  LINFER_CHECK(n_kv <= c.left() / 13, "{}: {} metadata entries cannot fit in the {} bytes left in the file", label,
               n_kv, c.left());
  h.metadata.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.string(fmt::format("metadata key {}", k), kMaxKeyBytes);
    LINFER_CHECK(!key.empty(), "{}: metadata key {} is empty", label, k);
    const auto type = uint32_t(c.uint(4, "key '" + key + "' (type)"));
    LINFER_CHECK(known_type(type), "{}: key '{}': unknown value type {}", label, key, type);
    GgufValue v = read_value(c, GgufType(type), key, 0);
    LINFER_CHECK(h.key_index.emplace(key, h.metadata.size()).second, "{}: key '{}' appears twice", label, key);
    h.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    LINFER_CHECK(a->type == GgufType::U32, "{}: key 'general.alignment' has type {} (expected u32)", label,
                 gguf_type_name(a->type));
    LINFER_CHECK(a->u != 0 && (a->u & (a->u - 1)) == 0, "{}: general.alignment = {} is not a power of two", label, a->u);
    h.alignment = a->u;
  }
  LINFER_CHECK(n_tensors <= c.left() / 32, "{}: {} tensors cannot fit in the {} bytes left in the file", label,
               n_tensors, c.left());
  h.tensors.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t = read_tensor_info(c, size_t(k));
    LINFER_CHECK(h.tensor_index.emplace(t.name, h.tensors.size()).second, "{}: tensor '{}' appears twice", label,
                 t.name);
    h.tensors.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (a file without tensors may end
  // before it).
  const uint64_t data_begin = align_up(c.pos, h.alignment);
  LINFER_CHECK(n_tensors == 0 || data_begin <= file.size(), "{}: truncated: the tensor data would start at offset {} "
               "but the file has {} bytes", label, data_begin, file.size());
  h.data_begin = size_t(std::min<uint64_t>(data_begin, file.size()));
  const uint64_t data_size = file.size() - h.data_begin;
  std::vector<size_t> order;
  for (auto& t : h.tensors) {
    const std::string who = "tensor '" + t.name + "'";
    const uint64_t blocks = uint64_t(t.numel() / t.type->block);
    uint64_t nbytes;
    LINFER_CHECK(!__builtin_mul_overflow(blocks, uint64_t(t.type->block_bytes), &nbytes), "{}: {}: {} {} overflows",
                 label, who, t.type->name, shape_str(t.shape));
    LINFER_CHECK(t.offset % h.alignment == 0, "{}: {}: data offset {} is not a multiple of the alignment {}", label,
                 who, t.offset, h.alignment);
    LINFER_CHECK(t.offset <= data_size && nbytes <= data_size - t.offset,
                 "{}: {}: {} bytes at data offset {} run past the end of the file (the data section holds {} bytes)",
                 label, who, nbytes, t.offset, data_size);
    t.begin = h.data_begin + size_t(t.offset);
    t.end = t.begin + size_t(nbytes);
    // Kernels read elements in place: a misaligned element would be undefined behaviour.
    if (t.type->block == 1 && nbytes > 0)
      LINFER_CHECK(t.begin % t.type->block_bytes == 0, "{}: {}: data at file offset {} is not aligned to its {}-byte "
                   "elements", label, who, t.begin, t.type->block_bytes);
  }
  for (size_t k = 0; k < h.tensors.size(); ++k) order.push_back(k);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return h.tensors[a].begin < h.tensors[b].begin; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = h.tensors[order[k - 1]];
    const auto& t = h.tensors[order[k]];
    LINFER_CHECK(t.begin >= prev.end || t.begin == t.end || prev.begin == prev.end,
                 "{}: tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap", label, prev.name, prev.begin,
                 prev.end, t.name, t.begin, t.end);
  }
  return h;
}

// ---- lookups -----------------------------------------------------------------------------------

const GgufValue* GgufHeader::find(const std::string& key) const {
  auto it = key_index.find(key);
  return it == key_index.end() ? nullptr : &metadata[it->second].second;
}

const GgufTensorInfo* GgufHeader::find_tensor(const std::string& name) const {
  auto it = tensor_index.find(name);
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

const GgufTensorInfo& GgufHeader::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  LINFER_CHECK(t, "{}: tensor '{}' not found", label, name);
  return *t;
}

namespace {

const GgufValue& need(const GgufHeader& h, const std::string& key) {
  const GgufValue* v = h.find(key);
  LINFER_CHECK(v, "{}: metadata key '{}' not found", h.label, key);
  return *v;
}

int64_t as_int(const GgufHeader& h, const std::string& key, const GgufValue& v) {
  LINFER_CHECK(v.is_int(), "{}: key '{}' has type {} (expected an integer)", h.label, key, gguf_type_name(v.type));
  if (v.type == GgufType::U8 || v.type == GgufType::U16 || v.type == GgufType::U32 || v.type == GgufType::U64) {
    LINFER_CHECK(v.u <= uint64_t(std::numeric_limits<int64_t>::max()), "{}: key '{}' = {} is out of range", h.label,
                 key, v.u);
    return int64_t(v.u);
  }
  return v.i;
}

}  // namespace

int64_t GgufHeader::get_int(const std::string& key) const { return as_int(*this, key, need(*this, key)); }

double GgufHeader::get_float(const std::string& key) const {
  const GgufValue& v = need(*this, key);
  if (v.is_float()) return v.f;
  LINFER_CHECK(v.is_int(), "{}: key '{}' has type {} (expected a number)", label, key, gguf_type_name(v.type));
  return double(as_int(*this, key, v));
}

bool GgufHeader::get_bool(const std::string& key) const {
  const GgufValue& v = need(*this, key);
  LINFER_CHECK(v.type == GgufType::Bool, "{}: key '{}' has type {} (expected bool)", label, key, gguf_type_name(v.type));
  return v.i != 0;
}

const std::string& GgufHeader::get_string(const std::string& key) const {
  const GgufValue& v = need(*this, key);
  LINFER_CHECK(v.type == GgufType::String, "{}: key '{}' has type {} (expected string)", label, key,
               gguf_type_name(v.type));
  return v.str;
}

const GgufValue& GgufHeader::get_array(const std::string& key, GgufType elem) const {
  const GgufValue& v = need(*this, key);
  LINFER_CHECK(v.type == GgufType::Array && v.elem == elem, "{}: key '{}' has type {}{} (expected an array of {})",
               label, key, gguf_type_name(v.type), v.type == GgufType::Array ? fmt::format(" of {}", gguf_type_name(v.elem)) : "",
               gguf_type_name(elem));
  return v;
}

std::optional<int64_t> GgufHeader::opt_int(const std::string& key) const {
  return find(key) ? std::optional(get_int(key)) : std::nullopt;
}
std::optional<double> GgufHeader::opt_float(const std::string& key) const {
  return find(key) ? std::optional(get_float(key)) : std::nullopt;
}
std::optional<bool> GgufHeader::opt_bool(const std::string& key) const {
  return find(key) ? std::optional(get_bool(key)) : std::nullopt;
}
std::optional<std::string> GgufHeader::opt_string(const std::string& key) const {
  return find(key) ? std::optional(get_string(key)) : std::nullopt;
}

std::vector<int64_t> GgufHeader::per_layer_ints(const std::string& key, int64_t n_layers) const {
  const GgufValue& v = need(*this, key);
  if (v.type != GgufType::Array) return std::vector<int64_t>(size_t(n_layers), get_int(key));
  LINFER_CHECK(int64_t(v.items.size()) == n_layers, "{}: key '{}' has {} entries for {} layers", label, key,
               v.items.size(), n_layers);
  std::vector<int64_t> out;
  for (const auto& item : v.items) out.push_back(as_int(*this, key, item));
  return out;
}

// ---- files -------------------------------------------------------------------------------------

bool is_gguf_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const bool ok = std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  std::fclose(f);
  return ok;
}

GgufFile::GgufFile(const std::string& path) : map_(path), header_(parse_gguf({map_.data(), map_.size()}, path)) {}

TensorView GgufFile::view(const GgufTensorInfo& t) const {
  LINFER_CHECK(t.type->dtype.has_value(), "{}: tensor '{}' has type {}, which linfer does not support yet", path(),
               t.name, t.type->name);
  // Views are mutable by type only; the mapping is read-only and nobody writes through weights.
  return TensorView(const_cast<std::byte*>(map_.data() + t.begin), *t.type->dtype, t.shape);
}

}  // namespace linfer
