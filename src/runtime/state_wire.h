#pragma once
// Internal to the state writer and reader: the byte-level framing of the wire format
// (docs/state-format.md is the specification) and the XXH3 hashing both sides share.

#include <xxhash.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "linfer/core/error.h"

namespace linfer::wire {

static_assert(std::endian::native == std::endian::little,
              "the state wire format is little-endian; a big-endian port must byte-swap here");

inline constexpr char kMagic[8] = {'L', 'I', 'N', 'F', 'S', 'T', 'A', 'T'};
inline constexpr uint32_t kRecordTag = 0x4345524cu;   // "LREC"
inline constexpr uint32_t kTrailerTag = 0x444e454cu;  // "LEND"
inline constexpr uint32_t kMaxHeaderBytes = 64u << 20;

// Fixed-size fields of a record, hashed together with the payload that follows.
struct RecordHead {
  uint32_t tag;
  uint32_t index;       // position of the tensor in the header's table
  uint64_t raw_len;     // payload bytes after decompression
  uint64_t stored_len;  // payload bytes on the wire
};
static_assert(sizeof(RecordHead) == 24);

}  // namespace linfer::wire

namespace linfer {

struct StateHeader;
struct StateTensorHeader;

namespace wire {
// The header body (JSON text) and back; parse validates every field and names what is wrong.
std::string header_json(const StateHeader& h);
StateHeader parse_header_json(const std::string& text, const std::string& source);
// rows x elements of one row x dtype size, checked against overflow.
uint64_t tensor_raw_bytes(const StateTensorHeader& t, const std::string& source);
}  // namespace wire

// Incremental XXH3-64.
class StreamHash {
 public:
  StreamHash() : state_(XXH3_createState()) {
    LINFER_CHECK(state_ != nullptr, "out of memory for a hash state");
    XXH3_64bits_reset(state_);
  }
  ~StreamHash() { XXH3_freeState(state_); }
  StreamHash(const StreamHash&) = delete;
  StreamHash& operator=(const StreamHash&) = delete;
  void update(const void* p, size_t n) { XXH3_64bits_update(state_, p, n); }
  uint64_t digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

}  // namespace linfer
