// libFuzzer target: the GGUF parser, from memory. Any input must either parse into tensors whose
// byte ranges lie inside the input and do not overlap, with every metadata getter answering or
// throwing linfer::Error; a crash, a sanitizer report or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/gguf.h"
#include "linfer/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size);
  try {
    const linfer::GgufHeader h = linfer::parse_gguf(bytes, "fuzz.gguf");
    volatile uint8_t sink = 0;
    for (const auto& t : h.tensors) {
      if (t.begin > t.end || t.end > size || t.begin < h.data_begin) __builtin_trap();
      if (t.end > t.begin) sink = sink ^ data[t.begin] ^ data[t.end - 1];  // ASan checks the range
    }
    for (const auto& [key, value] : h.metadata) {
      try { h.get_int(key); } catch (const linfer::Error&) {}
      try { h.get_float(key); } catch (const linfer::Error&) {}
      try { h.get_bool(key); } catch (const linfer::Error&) {}
      try { h.get_string(key); } catch (const linfer::Error&) {}
      try { h.per_layer_ints(key, 4); } catch (const linfer::Error&) {}
    }
  } catch (const linfer::Error&) {
  }
  return 0;
}
