// Writes a SequenceState in the wire format (docs/state-format.md): header, one checksummed record
// per tensor in (layer, name) order, trailer. Records are complete units, so a reader on the other
// end of a pipe or socket can check and apply layer 0 while later layers are still being written.

#include <zstd.h>

#include <algorithm>
#include <numeric>
#include <span>

#include "runtime/state_format.h"
#include "runtime/state_wire.h"

namespace linfer {

namespace {

// Everything goes through here so the trailer can hash the whole stream.
struct Out {
  Sink& sink;
  StreamHash all;
  void put(const void* p, size_t n) {
    sink.write(p, n);
    all.update(p, n);
  }
  template <class T>
  void put_value(const T& v) {
    put(&v, sizeof(T));
  }
};

// Tensor i's stored rows as float32, oldest token first. Fixed / Growing rows are contiguous in the
// state already; a Ring's live rows wrap around its buffer and are gathered in token order.
std::span<const float> live_rows(const SequenceState& s, size_t i, std::vector<float>& scratch) {
  const StateTensorSpec& t = s.spec().tensors[i];
  int64_t row = s.row_elems(i), rows = s.rows(i);
  if (t.kind != StateKind::Ring) return {s.data(i), size_t(rows * row)};
  scratch.resize(size_t(rows * row));
  for (int64_t j = 0; j < rows; ++j) {
    int64_t token = s.n_tokens() - rows + j;
    std::copy_n(s.data(i) + (token % t.capacity) * row, row, scratch.data() + j * row);
  }
  return scratch;
}

}  // namespace

void write_state(Sink& sink, const SequenceState& state, const StateIdentity& id,
                 const StateWriteOptions& options, std::span<const float> last_logits) {
  LINFER_CHECK(options.dtype == DType::F32 || options.dtype == DType::BF16,
               "state storage dtype must be f32 or bf16, not {}", dtype_name(options.dtype));
  const StateSpec& spec = state.spec();

  // Record order: by layer, then role, so a receiver gets whole layers in sequence.
  std::vector<size_t> order(spec.tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto &x = spec.tensors[a], &y = spec.tensors[b];
    return x.layer != y.layer ? x.layer < y.layer : x.name < y.name;
  });

  StateHeader h;
  h.model_fingerprint = id.model_fingerprint;
  h.tokenizer_fingerprint = id.tokenizer_fingerprint;
  h.n_tokens = state.n_tokens();
  for (size_t i : order) {
    const StateTensorSpec& t = spec.tensors[i];
    StateTensorHeader th{t.layer, t.name, t.kind, t.shape, t.kind == StateKind::Ring ? t.capacity : 0,
                         state.rows(i), t.layout, options.dtype, options.compress, 0};
    th.raw_bytes = wire::tensor_raw_bytes(th, "write_state");
    if (!h.tensors.empty()) {
      const auto& prev = h.tensors.back();
      LINFER_CHECK(prev.layer != th.layer || prev.name != th.name,
                   "state spec has two tensors named '{}' in layer {}", th.name, th.layer);
    }
    h.tensors.push_back(std::move(th));
  }

  h.logits_vocab = int64_t(last_logits.size());
  h.logits_compressed = options.compress;

  Out out{sink, {}};
  std::string body = wire::header_json(h);
  LINFER_CHECK(body.size() <= wire::kMaxHeaderBytes, "state header of {} bytes is too large", body.size());
  {
    StreamHash head;
    uint32_t version = kStateFormatVersion, len = uint32_t(body.size());
    auto put = [&](const void* p, size_t n) {
      out.put(p, n);
      head.update(p, n);
    };
    put(wire::kMagic, sizeof(wire::kMagic));
    put(&version, 4);
    put(&len, 4);
    put(body.data(), body.size());
    out.put_value(head.digest());
  }

  std::vector<uint8_t> compressed;
  // One record: header fields + payload (compressed if asked) + XXH3 of both.
  auto put_record = [&](uint32_t index, const void* payload, size_t n, bool compress) {
    uint64_t raw_len = n;
    if (compress) {
      compressed.resize(ZSTD_compressBound(n));
      size_t z = ZSTD_compress(compressed.data(), compressed.size(), payload, n, options.zstd_level);
      LINFER_CHECK(!ZSTD_isError(z), "zstd: {}", ZSTD_getErrorName(z));
      payload = compressed.data();
      n = z;
    }
    wire::RecordHead head{wire::kRecordTag, index, raw_len, n};
    StreamHash rh;
    rh.update(&head, sizeof(head));
    rh.update(payload, n);
    out.put_value(head);
    out.put(payload, n);
    out.put_value(rh.digest());
  };

  std::vector<float> gathered;
  std::vector<uint8_t> converted;
  for (size_t r = 0; r < order.size(); ++r) {
    const StateTensorHeader& th = h.tensors[r];
    std::span<const float> rows = live_rows(state, order[r], gathered);
    const void* payload = rows.data();
    if (th.dtype == DType::BF16) {
      converted.resize(th.raw_bytes);
      from_f32(DType::BF16, rows.data(), converted.data(), rows.size());
      payload = converted.data();
    }
    put_record(uint32_t(r), payload, th.raw_bytes, th.compressed);
  }
  if (!last_logits.empty())
    put_record(uint32_t(order.size()), last_logits.data(), last_logits.size_bytes(), h.logits_compressed);

  uint32_t trailer[2] = {wire::kTrailerTag, uint32_t(h.n_records())};
  out.put(trailer, sizeof(trailer));
  uint64_t digest = out.all.digest();
  sink.write(&digest, sizeof(digest));
}

}  // namespace linfer
