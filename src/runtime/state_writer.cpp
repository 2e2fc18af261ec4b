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

// Tensor i's stored rows as float32, oldest token first, for a state holding n_tokens tokens.
// Fixed / Growing rows are contiguous in the state already; a Ring's live rows wrap around its buffer
// and are gathered in token order.
std::span<const float> live_rows(const SequenceState& s, size_t i, int64_t rows, int64_t n_tokens,
                                 std::vector<float>& scratch) {
  const StateTensorSpec& t = s.spec().tensors[i];
  int64_t row = s.row_elems(i);
  if (t.kind != StateKind::Ring) return {s.data(i), size_t(rows * row)};
  scratch.resize(size_t(rows * row));
  for (int64_t j = 0; j < rows; ++j) {
    int64_t token = n_tokens - rows + j;
    std::copy_n(s.data(i) + (token % t.capacity) * row, row, scratch.data() + j * row);
  }
  return scratch;
}

// Rows tensor i will hold once the state holds n_tokens tokens.
int64_t rows_at(const SequenceState& s, size_t i, int64_t n_tokens) {
  const StateTensorSpec& t = s.spec().tensors[i];
  switch (t.kind) {
    case StateKind::Fixed: return 1;
    case StateKind::Growing: return s.rows(i) + (n_tokens - s.n_tokens());
    case StateKind::Ring: return std::min(n_tokens, t.capacity);
  }
  return 0;
}

}  // namespace

StateWriter::~StateWriter() = default;

StateWriter::StateWriter(Sink& sink, const SequenceState& state, int64_t n_tokens, const StateIdentity& id,
                         const StateWriteOptions& options, int64_t logits_vocab)
    : sink_(sink), options_(options), all_(std::make_unique<StreamHash>()) {
  LINFER_CHECK(options.dtype == DType::F32 || options.dtype == DType::BF16,
               "state storage dtype must be f32 or bf16, not {}", dtype_name(options.dtype));
  LINFER_CHECK(n_tokens >= state.n_tokens() && logits_vocab >= 0,
               "StateWriter: a state of {} tokens cannot be written as one of {} (logits {})", state.n_tokens(),
               n_tokens, logits_vocab);
  const StateSpec& spec = state.spec();

  // Record order: by layer, then role, so a receiver gets whole layers in sequence.
  order_.resize(spec.tensors.size());
  std::iota(order_.begin(), order_.end(), 0);
  std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
    const auto &x = spec.tensors[a], &y = spec.tensors[b];
    return x.layer != y.layer ? x.layer < y.layer : x.name < y.name;
  });

  StateHeader& h = header_;
  h.model_fingerprint = id.model_fingerprint;
  h.tokenizer_fingerprint = id.tokenizer_fingerprint;
  h.n_tokens = n_tokens;
  for (size_t i : order_) {
    const StateTensorSpec& t = spec.tensors[i];
    StateTensorHeader th{t.layer, t.name, t.kind, t.shape, t.kind == StateKind::Ring ? t.capacity : 0,
                         rows_at(state, i, n_tokens), t.layout, options.dtype, options.compress, 0};
    th.raw_bytes = wire::tensor_raw_bytes(th, "write_state");
    if (!h.tensors.empty()) {
      const auto& prev = h.tensors.back();
      LINFER_CHECK(prev.layer != th.layer || prev.name != th.name,
                   "state spec has two tensors named '{}' in layer {}", th.name, th.layer);
    }
    h.tensors.push_back(std::move(th));
  }
  h.logits_vocab = logits_vocab;
  h.logits_compressed = options.compress;
}

void StateWriter::begin() {
  if (begun_) return;
  begun_ = true;
  std::string body = wire::header_json(header_);
  LINFER_CHECK(body.size() <= wire::kMaxHeaderBytes, "state header of {} bytes is too large", body.size());
  StreamHash head;
  uint32_t version = kStateFormatVersion, len = uint32_t(body.size());
  auto put_head = [&](const void* p, size_t n) {
    put(p, n);
    head.update(p, n);
  };
  put_head(wire::kMagic, sizeof(wire::kMagic));
  put_head(&version, 4);
  put_head(&len, 4);
  put_head(body.data(), body.size());
  uint64_t digest = head.digest();
  put(&digest, sizeof(digest));
}

void StateWriter::put(const void* p, size_t n) {
  sink_.write(p, n);
  all_->update(p, n);
}

// One record: header fields + payload (compressed if asked) + XXH3 of both.
void StateWriter::put_record(uint32_t index, const void* payload, size_t n, bool compress) {
  uint64_t raw_len = n;
  if (compress) {
    compressed_.resize(ZSTD_compressBound(n));
    size_t z = ZSTD_compress(compressed_.data(), compressed_.size(), payload, n, options_.zstd_level);
    LINFER_CHECK(!ZSTD_isError(z), "zstd: {}", ZSTD_getErrorName(z));
    payload = compressed_.data();
    n = z;
  }
  wire::RecordHead head{wire::kRecordTag, index, raw_len, n};
  StreamHash rh;
  rh.update(&head, sizeof(head));
  rh.update(payload, n);
  uint64_t digest = rh.digest();
  put(&head, sizeof(head));
  put(payload, n);
  put(&digest, sizeof(digest));
}

void StateWriter::write_layer(const SequenceState& state, int layer) {
  begin();
  const std::vector<StateTensorHeader>& ts = header_.tensors;
  LINFER_CHECK(next_ == ts.size() || ts[next_].layer >= layer,
               "StateWriter: layer {} written before layer {}", layer, ts[next_].layer);
  for (; next_ < ts.size() && ts[next_].layer == layer; ++next_) {
    const StateTensorHeader& th = ts[next_];
    size_t i = order_[next_];
    // (A ring's row count follows n_tokens, which a forward in progress has not advanced yet.)
    LINFER_CHECK(th.kind == StateKind::Ring || state.rows(i) == th.rows,
                 "StateWriter: layer {} '{}' holds {} rows, the header promised {} (written before the layer "
                 "was done?)", th.layer, th.name, state.rows(i), th.rows);
    std::span<const float> rows = live_rows(state, i, th.rows, header_.n_tokens, gathered_);
    const void* payload = rows.data();
    if (th.dtype == DType::BF16) {
      converted_.resize(th.raw_bytes);
      from_f32(DType::BF16, rows.data(), converted_.data(), rows.size());
      payload = converted_.data();
    }
    put_record(uint32_t(next_), payload, th.raw_bytes, th.compressed);
  }
  sink_.flush();
}

void StateWriter::finish(std::span<const float> last_logits) {
  begin();
  LINFER_CHECK(next_ == header_.tensors.size(), "StateWriter: finished after {} of {} tensors", next_,
               header_.tensors.size());
  LINFER_CHECK(int64_t(last_logits.size()) == header_.logits_vocab,
               "StateWriter: {} logits given, the header promised {}", last_logits.size(), header_.logits_vocab);
  if (!last_logits.empty())
    put_record(uint32_t(next_), last_logits.data(), last_logits.size_bytes(), header_.logits_compressed);
  uint32_t trailer[2] = {wire::kTrailerTag, uint32_t(header_.n_records())};
  put(trailer, sizeof(trailer));
  uint64_t digest = all_->digest();
  sink_.write(&digest, sizeof(digest));
  sink_.flush();
}

void write_state(Sink& sink, const SequenceState& state, const StateIdentity& id,
                 const StateWriteOptions& options, std::span<const float> last_logits) {
  StateWriter w(sink, state, state.n_tokens(), id, options, int64_t(last_logits.size()));
  const std::vector<StateTensorHeader>& ts = w.header().tensors;
  for (size_t r = 0; r < ts.size(); ++r)
    if (r == 0 || ts[r].layer != ts[r - 1].layer) w.write_layer(state, ts[r].layer);
  w.finish(last_logits);
}

}  // namespace linfer
