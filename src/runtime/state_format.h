#pragma once
// The state wire format (docs/state-format.md): a SequenceState as a self-describing, checked,
// streamable byte stream. Header (model + tokenizer fingerprints, token count, every tensor's layer,
// role, kind, dtype, shape, layout), then one record per tensor in layer order, each with its own
// XXH3 checksum, optionally the logits of the last token (so a decoder can sample its first token
// without recomputing anything), then a trailer with the checksum of the whole stream.
//
//   StateIdentity id{model->fingerprint(), tokenizer_fp};
//   FileSink out("chat.lstate");
//   write_state(out, state, id, {.dtype = DType::BF16, .compress = true});
//   out.close();
//
//   FileSource in("chat.lstate");
//   StateReader reader(in);                       // reads and checks the header
//   SequenceState s = reader.read(model->state_spec(), id);   // refuses any mismatch or corruption
//
// Thread-safety: free functions are reentrant; a StateReader belongs to one thread.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "linfer/core/dtype.h"
#include "linfer/state.h"
#include "runtime/state_stream.h"

namespace linfer {

inline constexpr uint32_t kStateFormatVersion = 1;

class StreamHash;  // runtime/state_wire.h

struct StateIdentity {
  std::string model_fingerprint;      // Model::fingerprint()
  std::string tokenizer_fingerprint;  // "" when no tokenizer is involved (token-id interfaces)
};

struct StateWriteOptions {
  DType dtype = DType::F32;  // F32 (exact) or BF16 (half the bytes; accuracy cost in the docs)
  bool compress = false;     // zstd, per record, so the stream stays streamable
  int zstd_level = 3;
};

// One tensor as the header describes it.
struct StateTensorHeader {
  int layer = 0;
  std::string name;
  StateKind kind = StateKind::Fixed;
  Shape shape;           // Fixed: whole tensor; Growing / Ring: one row
  int64_t capacity = 0;  // Ring only
  int64_t rows = 1;      // rows stored (Fixed: 1; Growing: rows in use; Ring: live rows, oldest first)
  std::string layout;
  DType dtype = DType::F32;  // as stored
  bool compressed = false;
  uint64_t raw_bytes = 0;    // rows x row elements x dtype size, before compression
};

struct StateHeader {
  uint32_t version = kStateFormatVersion;
  std::string model_fingerprint;
  std::string tokenizer_fingerprint;
  int64_t n_tokens = 0;
  std::vector<StateTensorHeader> tensors;  // in record order (ascending layer)
  int64_t logits_vocab = 0;                // > 0: a last record holds the last token's logits [vocab]
  bool logits_compressed = false;
  size_t n_records() const { return tensors.size() + (logits_vocab > 0); }
};

// `last_logits` ([vocab] float32, may be empty): the logits after the state's last token, stored
// as float32 whatever options.dtype says (sampling from them must match an uninterrupted run).
void write_state(Sink& sink, const SequenceState& state, const StateIdentity& id,
                 const StateWriteOptions& options = {}, std::span<const float> last_logits = {});

// The same bytes as write_state, written piece by piece for a producer that finishes one layer at a
// time (runtime/prefill_stream.h): everything the header holds (token count, rows, sizes, whether
// logits follow) is known before any tensor is final, so the header goes out first, then each
// layer's records as soon as that layer is done, then the logits and the trailer.
//
//   StateWriter w(sink, state, state.n_tokens() + T, id, options, vocab);  // header written
//   ... after layer l has run over the T tokens:  w.write_layer(state, l);
//   w.finish(logits);                                                     // logits + trailer
class StateWriter {
 public:
  // `state` is the sequence as it will be once it holds `n_tokens` tokens (now, or after a forward
  // about to run: Growing tensors gain n_tokens - state.n_tokens() rows). logits_vocab > 0 promises
  // that many logits to finish(). The constructor only plans the header (it reads `state`, so call it
  // before that forward starts); the header's bytes go out with the first write_layer / finish, on
  // the thread that makes it, so a slow sink never delays the caller here.
  StateWriter(Sink& sink, const SequenceState& state, int64_t n_tokens, const StateIdentity& id,
              const StateWriteOptions& options = {}, int64_t logits_vocab = 0);
  ~StateWriter();
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  // Writes the records of `layer`'s tensors, which must be final; layers with state go in ascending
  // order, none skipped. A tensor whose rows differ from the header's is an Error (written too early).
  void write_layer(const SequenceState& state, int layer);
  // Writes the logits record (exactly logits_vocab floats, or none) and the trailer; every layer
  // must have been written.
  void finish(std::span<const float> last_logits = {});
  const StateHeader& header() const { return header_; }

 private:
  void begin();  // writes the header once
  void put(const void* p, size_t n);
  void put_record(uint32_t index, const void* payload, size_t n, bool compress);

  Sink& sink_;
  StateWriteOptions options_;
  StateHeader header_;
  std::vector<size_t> order_;               // record r holds spec tensor order_[r]
  size_t next_ = 0;                         // next record to write
  bool begun_ = false;                      // header written
  std::unique_ptr<StreamHash> all_;         // XXH3 over every byte before the trailer's checksum
  std::vector<float> gathered_;             // scratch: a ring's rows in token order
  std::vector<uint8_t> converted_, compressed_;
};

struct StateReadOptions {
  // Refuse records whose decoded size exceeds this: a hostile header cannot make us allocate
  // without bound. The default admits any real model.
  uint64_t max_record_bytes = uint64_t(1) << 40;
  // Off only in the fuzzer, so mutated inputs reach the parsing beneath the checksums.
  bool verify_checksums = true;
};

class StateReader {
 public:
  // Reads and validates the header (magic, version, checksum, field types and sizes).
  explicit StateReader(Source& source, StateReadOptions options = {});
  ~StateReader();
  const StateHeader& header() const { return header_; }

  // Checks the header against this model (fingerprints, every tensor's layer / role / kind / shape /
  // layout) before reading any payload, then reads every record into a new state, verifying each
  // record's checksum and the trailer. Throws Error with a message a user can act on.
  SequenceState read(const StateSpec& spec, const StateIdentity& expected);
  // The stored last-token logits (empty if none); filled by read() and verify().
  const std::vector<float>& logits() const { return logits_; }

  // Reads and verifies every record without a model; returns each record's stored (on-the-wire)
  // payload bytes (tensors in header order, then the logits if any). For `linfer state info` and
  // the fuzzer.
  std::vector<uint64_t> verify();

 private:
  // Reads the next record (which must be record `index`) into `raw` (decoded bytes); returns its
  // stored size.
  uint64_t next_record(size_t index, std::vector<uint8_t>& raw);
  uint64_t read_logits();  // returns its stored size (0: none)
  void read_trailer();
  template <class T>
  T take(const char* what);
  void take_bytes(void* dst, size_t n, const char* what);

  Source& src_;
  StateReadOptions options_;
  StateHeader header_;
  std::vector<float> logits_;
  std::unique_ptr<StreamHash> stream_hash_;  // XXH3 over every byte before the trailer's checksum
};

// "ab12cd34ef56..." — fingerprints in messages, shortened.
std::string short_fingerprint(const std::string& fp);
const char* state_kind_name(StateKind k);

}  // namespace linfer
