// Reads the wire format (docs/state-format.md). Nothing is trusted before its checksum passes, and
// nothing is allocated beyond what the bytes actually present justify (or StateReadOptions allows):
// a truncated, corrupted or hostile stream is an Error, never a crash or a silently wrong state.

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "runtime/state_format.h"
#include "runtime/state_wire.h"

namespace linfer {

namespace {

constexpr size_t kReadChunk = 16u << 20;

std::string describe(const StateTensorHeader& t) {
  return fmt::format("layer {} '{}' ({} {}{}, layout '{}')", t.layer, t.name, state_kind_name(t.kind),
                     shape_str(t.shape), t.kind == StateKind::Ring ? fmt::format(" x {}", t.capacity) : "",
                     t.layout);
}

std::string describe(const StateTensorSpec& t) {
  return fmt::format("layer {} '{}' ({} {}{}, layout '{}')", t.layer, t.name, state_kind_name(t.kind),
                     shape_str(t.shape), t.kind == StateKind::Ring ? fmt::format(" x {}", t.capacity) : "",
                     t.layout);
}

}  // namespace

void StateReader::take_bytes(void* dst, size_t n, const char* what) {
  try {
    src_.read(dst, n);
  } catch (const Error& e) {
    fail("{} (while reading {})", e.what(), what);
  }
  stream_hash_->update(dst, n);
}

template <class T>
T StateReader::take(const char* what) {
  T v;
  take_bytes(&v, sizeof(T), what);
  return v;
}

StateReader::~StateReader() = default;

StateReader::StateReader(Source& source, StateReadOptions options)
    : src_(source), options_(options), stream_hash_(std::make_unique<StreamHash>()) {
  const std::string& name = src_.name();
  char magic[8];
  take_bytes(magic, 8, "the magic number");
  LINFER_CHECK(std::equal(magic, magic + 8, wire::kMagic), "{}: not a linfer state (bad magic number)",
               name);
  auto version = take<uint32_t>("the format version");
  auto len = take<uint32_t>("the header length");
  LINFER_CHECK(version == kStateFormatVersion,
               "{}: state format version {}; this linfer reads version {} (or the header is corrupted)",
               name, version, kStateFormatVersion);
  LINFER_CHECK(len <= wire::kMaxHeaderBytes, "{}: state header length {} exceeds {} bytes: corrupted",
               name, len, wire::kMaxHeaderBytes);
  std::string body(len, '\0');
  take_bytes(body.data(), len, "the header");
  StreamHash head;
  head.update(magic, 8);
  head.update(&version, 4);
  head.update(&len, 4);
  head.update(body.data(), len);
  uint64_t expect = head.digest();
  auto stored = take<uint64_t>("the header checksum");
  LINFER_CHECK(stored == expect || !options_.verify_checksums, "{}: state header checksum mismatch: the state is corrupted", name);
  header_ = wire::parse_header_json(body, name);
  for (const auto& t : header_.tensors)
    LINFER_CHECK(t.raw_bytes <= options_.max_record_bytes, "{}: state tensor {} has {} bytes, above the "
                 "reader's limit of {}", name, describe(t), t.raw_bytes, options_.max_record_bytes);
}

uint64_t StateReader::next_record(size_t index, std::vector<uint8_t>& raw) {
  const std::string& name = src_.name();
  bool is_logits = index == header_.tensors.size();
  std::string what = is_logits ? std::string("the logits") : "state tensor " + describe(header_.tensors[index]);
  uint64_t raw_bytes = is_logits ? uint64_t(header_.logits_vocab) * 4 : header_.tensors[index].raw_bytes;
  bool compressed = is_logits ? header_.logits_compressed : header_.tensors[index].compressed;

  auto head = take<wire::RecordHead>("a record header");
  LINFER_CHECK(head.tag == wire::kRecordTag && head.index == index,
               "{}: expected the record of {} at byte {}: corrupted", name, what,
               src_.n_bytes() - sizeof(head));
  LINFER_CHECK(head.raw_len == raw_bytes, "{}: record of {} holds {} bytes, the header says {}: corrupted",
               name, what, head.raw_len, raw_bytes);
  uint64_t bound = compressed ? ZSTD_compressBound(raw_bytes) : raw_bytes;
  LINFER_CHECK(compressed ? head.stored_len <= bound : head.stored_len == bound,
               "{}: record of {} claims {} stored bytes: corrupted", name, what, head.stored_len);

  // Grow the buffer as bytes arrive: a lying length on a short stream fails on truncation before it
  // can allocate more than the stream holds.
  std::vector<uint8_t> stored;
  while (stored.size() < head.stored_len) {
    size_t k = size_t(std::min<uint64_t>(kReadChunk, head.stored_len - stored.size()));
    size_t at = stored.size();
    stored.resize(at + k);
    take_bytes(stored.data() + at, k, "a record payload");
  }
  StreamHash rh;
  rh.update(&head, sizeof(head));
  rh.update(stored.data(), stored.size());
  uint64_t expect = rh.digest();
  auto got = take<uint64_t>("a record checksum");
  LINFER_CHECK(got == expect || !options_.verify_checksums, "{}: checksum mismatch in the record of {}: "
               "the state is corrupted", name, what);

  if (!compressed) {
    raw = std::move(stored);
  } else {
    raw.resize(raw_bytes);
    size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
    LINFER_CHECK(!ZSTD_isError(n) && n == raw_bytes, "{}: record of {} does not decompress to {} bytes: {}",
                 name, what, raw_bytes, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
  }
  return head.stored_len;
}

uint64_t StateReader::read_logits() {
  logits_.clear();
  if (header_.logits_vocab == 0) return 0;
  std::vector<uint8_t> raw;
  uint64_t stored = next_record(header_.tensors.size(), raw);
  logits_.resize(size_t(header_.logits_vocab));
  std::memcpy(logits_.data(), raw.data(), raw.size());
  return stored;
}

void StateReader::read_trailer() {
  const std::string& name = src_.name();
  auto tag = take<uint32_t>("the trailer");
  auto count = take<uint32_t>("the trailer");
  LINFER_CHECK(tag == wire::kTrailerTag && count == header_.n_records(),
               "{}: bad trailer after {} records: corrupted", name, header_.n_records());
  uint64_t expect = stream_hash_->digest();
  uint64_t got;
  try {
    src_.read(&got, sizeof(got));
  } catch (const Error& e) {
    fail("{} (while reading the final checksum)", e.what());
  }
  LINFER_CHECK(got == expect || !options_.verify_checksums, "{}: whole-stream checksum mismatch: the state is corrupted", name);
}

std::vector<uint64_t> StateReader::verify() {
  std::vector<uint64_t> stored(header_.n_records());
  std::vector<uint8_t> raw;
  for (size_t i = 0; i < header_.tensors.size(); ++i) stored[i] = next_record(i, raw);
  if (header_.logits_vocab > 0) stored.back() = read_logits();
  read_trailer();
  return stored;
}

SequenceState StateReader::read(const StateSpec& spec, const StateIdentity& expected) {
  const std::string& name = src_.name();
  const StateHeader& h = header_;
  LINFER_CHECK(h.model_fingerprint == expected.model_fingerprint,
               "{}: state was written by model {} but this model is {}", name,
               short_fingerprint(h.model_fingerprint), short_fingerprint(expected.model_fingerprint));
  LINFER_CHECK(h.tokenizer_fingerprint.empty() || expected.tokenizer_fingerprint.empty() ||
                   h.tokenizer_fingerprint == expected.tokenizer_fingerprint,
               "{}: state was written with tokenizer {} but this model's tokenizer is {}", name,
               short_fingerprint(h.tokenizer_fingerprint), short_fingerprint(expected.tokenizer_fingerprint));
  LINFER_CHECK(h.tensors.size() == spec.tensors.size(),
               "{}: state has {} tensors but this model's state has {}", name, h.tensors.size(),
               spec.tensors.size());

  // Match every header tensor to the model's spec before touching any payload.
  std::vector<size_t> target(h.tensors.size());
  for (size_t r = 0; r < h.tensors.size(); ++r) {
    const StateTensorHeader& t = h.tensors[r];
    auto it = std::find_if(spec.tensors.begin(), spec.tensors.end(), [&](const StateTensorSpec& s) {
      return s.layer == t.layer && s.name == t.name;
    });
    LINFER_CHECK(it != spec.tensors.end(), "{}: state tensor {} does not exist in this model", name,
                 describe(t));
    LINFER_CHECK(it->kind == t.kind && it->shape == t.shape && it->layout == t.layout &&
                     (t.kind != StateKind::Ring || it->capacity == t.capacity),
                 "{}: state tensor {} does not match this model's {}", name, describe(t), describe(*it));
    target[r] = size_t(it - spec.tensors.begin());
  }

  SequenceState s(spec);
  s.set_n_tokens(h.n_tokens);
  std::vector<uint8_t> raw;
  for (size_t r = 0; r < h.tensors.size(); ++r) {
    const StateTensorHeader& t = h.tensors[r];
    next_record(r, raw);
    size_t i = target[r];
    int64_t row = s.row_elems(i);
    float* dst = t.kind == StateKind::Growing ? s.append_rows(i, t.rows) : s.data(i);
    auto rows_to = [&](int64_t j) {  // where stored row j goes
      if (t.kind != StateKind::Ring) return dst + j * row;
      int64_t token = h.n_tokens - t.rows + j;
      return dst + (token % t.capacity) * row;
    };
    for (int64_t j = 0; j < t.rows; ++j)
      to_f32(t.dtype, raw.data() + size_t(j * row) * dtype_size(t.dtype), rows_to(j), size_t(row));
  }
  read_logits();
  read_trailer();
  return s;
}

}  // namespace linfer
