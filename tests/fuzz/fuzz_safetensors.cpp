// libFuzzer target: the safetensors header parser and config.json parsing, from memory. Any input
// must either parse into entries whose byte ranges lie inside the input, or throw linfer::Error;
// a crash, a sanitizer report or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/config.h"
#include "io/safetensors.h"
#include "linfer/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size);
  try {
    linfer::SafetensorsHeader h = linfer::parse_safetensors(bytes, "fuzz.safetensors");
    volatile uint8_t sink = 0;
    for (const auto& e : h.tensors) {
      if (e.begin > e.end || e.end > size) __builtin_trap();
      if (e.end > e.begin) sink = sink ^ data[e.begin] ^ data[e.end - 1];  // ASan checks the range
    }
  } catch (const linfer::Error&) {
  }
  try {
    linfer::Config c = linfer::Config::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    // The getters a model loader calls, over whatever fields exist, with every type.
    for (const auto& [key, value] : c.json().items()) {
      try { c.get<int64_t>(key); } catch (const linfer::Error&) {}
      try { c.get<int>(key); } catch (const linfer::Error&) {}
      try { c.get<double>(key); } catch (const linfer::Error&) {}
      try { c.get<bool>(key); } catch (const linfer::Error&) {}
      try { c.get<std::string>(key); } catch (const linfer::Error&) {}
      try { c.get<std::vector<int64_t>>(key); } catch (const linfer::Error&) {}
      try { c.get<std::vector<std::string>>(key); } catch (const linfer::Error&) {}
      try { c.sub(key).has("x"); } catch (const linfer::Error&) {}
    }
  } catch (const linfer::Error&) {
  }
  return 0;
}
