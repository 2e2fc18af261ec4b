#include "io/safetensors_writer.h"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "linfer/core/error.h"

namespace linfer {

SafetensorsWriter::SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata)
    : path_(std::move(path)), metadata_(std::move(metadata)) {}

SafetensorsWriter::~SafetensorsWriter() {
  if (f_) std::fclose(f_);
}

void SafetensorsWriter::declare(const std::string& name, const std::string& dtype, const Shape& shape,
                                size_t nbytes) {
  LINFER_CHECK(!f_, "{}: tensor '{}' declared after the header was written", path_, name);
  entries_.push_back({name, dtype, shape, nbytes});
}

void SafetensorsWriter::begin() {
  nlohmann::json j = nlohmann::json::object();
  if (!metadata_.empty()) j["__metadata__"] = metadata_;
  size_t off = 0;
  for (const auto& e : entries_) {
    j[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes}}};
    off += e.nbytes;
  }
  total_ = off;
  std::string header = j.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as other writers do
  f_ = std::fopen(path_.c_str(), "wb");
  LINFER_CHECK(f_, "cannot create {}: {}", path_, std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  LINFER_CHECK(std::fwrite(len, 1, 8, f_) == 8 && std::fwrite(header.data(), 1, header.size(), f_) == header.size(),
               "{}: write failed: {}", path_, std::strerror(errno));
}

void SafetensorsWriter::write(const void* data, size_t n) {
  LINFER_CHECK(f_, "{}: tensor bytes written before the header", path_);
  LINFER_CHECK(written_ + n <= total_, "{}: {} bytes written past the {} declared", path_, written_ + n, total_);
  LINFER_CHECK(std::fwrite(data, 1, n, f_) == n, "{}: write failed: {}", path_, std::strerror(errno));
  written_ += n;
}

void SafetensorsWriter::finish() {
  LINFER_CHECK(f_, "{}: finish before begin", path_);
  LINFER_CHECK(written_ == total_, "{}: {} of {} declared bytes written", path_, written_, total_);
  const bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  LINFER_CHECK(ok, "{}: close failed: {}", path_, std::strerror(errno));
}

}  // namespace linfer
