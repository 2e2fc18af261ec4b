#include "io/safetensors.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/quant_formats.h"
#include "linfer/core/error.h"

namespace linfer {

namespace {

// The safetensors reference implementation refuses headers above 100 MB; so do we (a lying length
// field must not make us allocate or scan gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeInfo {
  const char* name;
  size_t size;
  std::optional<DType> dtype;
};

// Every dtype the format defines, so headers of any checkpoint parse; only some map to DType.
constexpr DTypeInfo kDTypes[] = {
    {"F64", 8, DType::F64},   {"F32", 4, DType::F32},      {"F16", 2, DType::F16},
    {"BF16", 2, DType::BF16}, {"I64", 8, DType::I64},      {"I32", 4, DType::I32},
    {"I16", 2, std::nullopt}, {"I8", 1, std::nullopt},     {"U64", 8, std::nullopt},
    {"U32", 4, std::nullopt}, {"U16", 2, std::nullopt},    {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint64_t(p[i]);
  return v;
}

bool is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& j, size_t data_begin,
                             size_t data_size, const std::string& label) {
  auto bad = [&](const std::string& what) { fail("{}: tensor '{}': {}", label, name, what); };
  if (!j.is_object()) bad("header entry is not an object");
  SafetensorsEntry e;
  e.name = name;

  auto dt = j.find("dtype");
  if (dt == j.end() || !dt->is_string()) bad("missing or non-string \"dtype\"");
  e.dtype_name = dt->get<std::string>();
  const DTypeInfo* info = find_dtype(e.dtype_name);
  if (!info) bad(fmt::format("unknown dtype \"{}\"", e.dtype_name));
  e.dtype = info->dtype;

  auto sh = j.find("shape");
  if (sh == j.end() || !sh->is_array()) bad("missing or non-array \"shape\"");
  if (sh->size() > 16) bad(fmt::format("{} dimensions (at most 16 supported)", sh->size()));
  // numel with checked multiplication; strides are products of trailing dims, so even a shape with
  // a zero dimension must keep the product of its other dimensions within int64.
  uint64_t numel = 1, span = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_integer()) bad("shape has a non-integer dimension");
    if (d.is_number_unsigned() ? d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                               : d.get<int64_t>() < 0)
      bad(fmt::format("shape has a negative or out-of-range dimension {}", d.dump()));
    int64_t dim = d.get<int64_t>();
    e.shape.push_back(dim);
    if (__builtin_mul_overflow(numel, uint64_t(dim), &numel) ||
        __builtin_mul_overflow(span, uint64_t(std::max<int64_t>(dim, 1)), &span) ||
        span > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(fmt::format("shape {} overflows", sh->dump()));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, uint64_t(info->size), &nbytes) ||
      nbytes > uint64_t(std::numeric_limits<int64_t>::max()))
    bad(fmt::format("shape {} overflows", sh->dump()));

  auto off = j.find("data_offsets");
  if (off == j.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    bad("\"data_offsets\" must be two non-negative integers");
  uint64_t b = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  if (b > end || end > data_size)
    bad(fmt::format("data_offsets [{}, {}] outside the data region of {} bytes", b, end, data_size));
  if (end - b != nbytes)
    bad(fmt::format("data_offsets [{}, {}] hold {} bytes but {} {} needs {}", b, end, end - b,
                    e.dtype_name, shape_str(e.shape), nbytes));
  e.begin = data_begin + size_t(b);
  e.end = data_begin + size_t(end);
  // Kernels read elements in place: a misaligned element would be undefined behaviour. Writers pad
  // the header to 8 bytes, so real files always pass.
  if (nbytes > 0 && e.begin % info->size != 0)
    bad(fmt::format("data at file offset {} is not aligned to its {}-byte elements", e.begin,
                    info->size));
  return e;
}

// Gives the U8 tensors that __metadata__ names as quantized their type and logical shape.
void apply_quant_metadata(SafetensorsHeader& h, const std::string& label) {
  std::unordered_map<std::string_view, SafetensorsEntry*> by_name;
  for (auto& t : h.tensors) by_name[t.name] = &t;
  for (const auto& [key, type] : h.metadata) {
    if (key.rfind(kQuantMetadataPrefix, 0) != 0) continue;
    const std::string name = key.substr(kQuantMetadataPrefix.size());
    auto it = by_name.find(name);
    LINFER_CHECK(it != by_name.end(), "{}: __metadata__ '{}' names a tensor the file does not have", label, key);
    SafetensorsEntry* e = it->second;
    const std::optional<DType> t = quant::dtype_from_name(type);
    LINFER_CHECK(t && is_quantized(*t), "{}: __metadata__ '{}' = \"{}\" is not a quantized type (q8_0, q4_0, q4_k, "
                 "q6_k)", label, key, type);
    LINFER_CHECK(e->dtype_name == "U8" && !e->shape.empty(),
                 "{}: tensor '{}' is marked {} but is stored as {} {} (expected U8 [..., bytes per row])", label,
                 name, type, e->dtype_name, shape_str(e->shape));
    const int64_t row_bytes = e->shape.back(), bb = int64_t(dtype_block_bytes(*t));
    LINFER_CHECK(row_bytes % bb == 0, "{}: tensor '{}' ({}): a row of {} bytes is not whole {}-byte blocks", label,
                 name, type, row_bytes, bb);
    e->dtype = *t;
    e->shape.back() = row_bytes / bb * dtype_block(*t);
    e->dtype_name = type;
    for (char& c : e->dtype_name) c = char(std::toupper(static_cast<unsigned char>(c)));
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& label) {
  LINFER_CHECK(file.size() >= 8, "{}: {} bytes is too short for a safetensors file (needs an 8-byte "
               "header length)", label, file.size());
  uint64_t n = read_u64_le(file.data());
  LINFER_CHECK(n <= file.size() - 8, "{}: header length {} exceeds the file ({} bytes): truncated "
               "or not a safetensors file", label, n, file.size());
  LINFER_CHECK(n <= kMaxHeaderBytes, "{}: header length {} exceeds the {}-byte limit", label, n,
               kMaxHeaderBytes);
  LINFER_CHECK(n >= 2, "{}: header length {} is too short for a JSON object", label, n);

  const char* text = reinterpret_cast<const char*>(file.data() + 8);
  nlohmann::json j = nlohmann::json::parse(text, text + n, nullptr, /*allow_exceptions=*/false);
  LINFER_CHECK(!j.is_discarded(), "{}: header is not valid JSON", label);
  LINFER_CHECK(j.is_object(), "{}: header is JSON but not an object", label);

  SafetensorsHeader h;
  h.data_begin = size_t(8 + n);
  size_t data_size = file.size() - h.data_begin;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      LINFER_CHECK(value.is_object(), "{}: __metadata__ is not an object", label);
      for (const auto& [mk, mv] : value.items()) {
        LINFER_CHECK(mv.is_string(), "{}: __metadata__ field '{}' is not a string", label, mk);
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(key, value, h.data_begin, data_size, label));
  }
  apply_quant_metadata(h, label);
  return h;
}

// ---- one file --------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::string& path)
    : map_(path), header_(parse_safetensors({map_.data(), map_.size()}, path)) {}

TensorView SafetensorsFile::view(const SafetensorsEntry& e) const {
  LINFER_CHECK(e.dtype.has_value(), "{}: tensor '{}' has dtype {}, which linfer does not support",
               path(), e.name, e.dtype_name);
  // Views are mutable by type only; the mapping is read-only and nobody writes through weights.
  return TensorView(const_cast<std::byte*>(map_.data() + e.begin), *e.dtype, e.shape);
}

// ---- a folder --------------------------------------------------------------------------------

SafetensorsDir::SafetensorsDir(const std::string& dir) : dir_(dir) {
  std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> paths;
  if (is_file(index_path)) {
    // The index maps tensor -> shard; read the shards it names (each once) and check the map below.
    MappedFile f(index_path);
    const char* text = reinterpret_cast<const char*>(f.data());
    auto j = nlohmann::json::parse(text, text + f.size(), nullptr, false);
    LINFER_CHECK(!j.is_discarded() && j.is_object(), "{}: not a JSON object", index_path);
    auto wm = j.find("weight_map");
    LINFER_CHECK(wm != j.end() && wm->is_object(), "{}: missing object \"weight_map\"", index_path);
    std::vector<std::string> shards;
    for (const auto& [name, shard] : wm->items()) {
      LINFER_CHECK(shard.is_string(), "{}: weight_map['{}'] is not a file name", index_path, name);
      std::string s = shard.get<std::string>();
      LINFER_CHECK(!s.empty() && s.find('/') == std::string::npos,
                   "{}: weight_map['{}'] = \"{}\" is not a file name in the folder", index_path, name, s);
      shards.push_back(s);
    }
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    for (const auto& s : shards) paths.push_back(dir + "/" + s);
    for (const auto& p : paths) add_file(p);
    for (const auto& [name, shard] : wm->items()) {
      auto it = index_.find(name);
      LINFER_CHECK(it != index_.end(), "{}: tensor '{}' is listed in {} but not present there",
                   dir + "/" + shard.get<std::string>(), name, index_path);
      LINFER_CHECK(it->second.file->path() == dir + "/" + shard.get<std::string>(),
                   "{}: tensor '{}' is listed in {} but found in {}", index_path, name,
                   shard.get<std::string>(), it->second.file->path());
    }
    return;
  }
  if (is_file(dir + "/model.safetensors")) {
    add_file(dir + "/model.safetensors");
    return;
  }
  DIR* d = ::opendir(dir.c_str());
  LINFER_CHECK(d != nullptr, "cannot open checkpoint folder {}: {}", dir, std::strerror(errno));
  while (dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (ends_with(name, ".safetensors") && is_file(dir + "/" + name)) paths.push_back(dir + "/" + name);
  }
  ::closedir(d);
  LINFER_CHECK(!paths.empty(), "{}: no model.safetensors, model.safetensors.index.json or "
               "*.safetensors files", dir);
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) add_file(p);
}

void SafetensorsDir::add_file(const std::string& path) {
  LINFER_CHECK(is_file(path), "{}: missing checkpoint file", path);
  files_.push_back(std::make_unique<SafetensorsFile>(path));
  const SafetensorsFile& f = *files_.back();
  for (const auto& e : f.header().tensors) {
    Slot s{&f, &e, std::nullopt};
    if (e.dtype) s.view = f.view(e);
    auto [it, inserted] = index_.emplace(e.name, s);
    LINFER_CHECK(inserted, "tensor '{}' appears in both {} and {}", e.name, it->second.file->path(),
                 path);
  }
}

std::vector<std::string> SafetensorsDir::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, slot] : index_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

const SafetensorsDir::Slot& SafetensorsDir::slot(const std::string& name) const {
  auto it = index_.find(name);
  LINFER_CHECK(it != index_.end(), "tensor '{}' not found in {}", name, dir_);
  return it->second;
}

const TensorView* SafetensorsDir::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  const Slot& s = it->second;
  LINFER_CHECK(s.view.has_value(), "{}: tensor '{}' has dtype {}, which linfer does not support",
               s.file->path(), name, s.entry->dtype_name);
  return &*s.view;
}

TensorView SafetensorsDir::get(const std::string& name) const {
  const Slot& s = slot(name);
  LINFER_CHECK(s.view.has_value(), "{}: tensor '{}' has dtype {}, which linfer does not support",
               s.file->path(), name, s.entry->dtype_name);
  return *s.view;
}

TensorView SafetensorsDir::get(const std::string& name, const Shape& expected) const {
  const Slot& s = slot(name);
  LINFER_CHECK(s.view.has_value() && (is_float(*s.entry->dtype) || is_quantized(*s.entry->dtype)),
               "{}: tensor '{}' has dtype {}; expected a float tensor (F32, BF16 or F16) or a quantized one",
               s.file->path(), name, s.entry->dtype_name);
  LINFER_CHECK(s.entry->shape == expected, "{}: tensor '{}' has shape {}; expected {}", s.file->path(),
               name, shape_str(s.entry->shape), shape_str(expected));
  return *s.view;
}

const std::string& SafetensorsDir::file_of(const std::string& name) const {
  return slot(name).file->path();
}

const SafetensorsEntry& SafetensorsDir::entry(const std::string& name) const {
  return *slot(name).entry;
}

}  // namespace linfer
