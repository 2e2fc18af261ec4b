// libFuzzer target: the state wire-format reader. Any input must be read completely or refused with
// linfer::Error; a crash, a sanitizer report, another exception or an allocation past the limit
// below is a bug. Inputs that parse are also loaded into a state matching their own header, so the
// payload-placement path (rings, growing rows, bf16) is fuzzed too.
#include <cstddef>
#include <cstdint>

#include "linfer/core/error.h"
#include "runtime/state_format.h"

namespace {

void read_one(std::span<const uint8_t> bytes, const linfer::StateReadOptions& limits) {
  try {
    linfer::BufferSource src(bytes, "fuzz.lstate");
    linfer::StateReader reader(src, limits);
    // The spec the header itself describes, so read() gets past the model checks.
    linfer::StateSpec spec;
    uint64_t total = 0;
    for (const auto& t : reader.header().tensors) {
      spec.tensors.push_back({t.layer, t.name, t.kind, t.shape, t.capacity, t.layout});
      uint64_t row = 4;
      for (int64_t d : t.shape) row = d > 0 && row <= (64u << 20) / uint64_t(d) ? row * uint64_t(d) : (128u << 20);
      total += t.kind == linfer::StateKind::Ring ? row * uint64_t(t.capacity) : row;
    }
    if (total > (64u << 20)) return;  // a spec this large would be the model's own allocation
    const auto& h = reader.header();
    reader.read(spec, {h.model_fingerprint, h.tokenizer_fingerprint});
  } catch (const linfer::Error&) {
  }
  try {
    linfer::BufferSource src(bytes, "fuzz.lstate");
    linfer::StateReader reader(src, limits);
    reader.verify();
  } catch (const linfer::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  // As deployed, and with checksums off: a mutation almost never carries a valid XXH3, so without
  // the second pass the fuzzer would only ever exercise the checksum refusals.
  read_one(bytes, {.max_record_bytes = 16u << 20});
  read_one(bytes, {.max_record_bytes = 16u << 20, .verify_checksums = false});
  return 0;
}
