#include "runtime/state_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "linfer/core/error.h"

namespace linfer {

StateIdentity state_identity(const Model& model, const Tokenizer* tok) {
  return {model.fingerprint(), tok ? tok->fingerprint() : std::string()};
}

void save_state_file(const std::string& path, const Model& model, const Tokenizer* tok,
                     const SequenceState& state, std::span<const float> last_logits,
                     const StateWriteOptions& options) {
  LINFER_CHECK(last_logits.empty() || int64_t(last_logits.size()) == model.info().vocab_size,
               "save_state_file: {} logits for a vocabulary of {}", last_logits.size(), model.info().vocab_size);
  std::string tmp = path + ".tmp";
  try {
    FileSink out(tmp);
    write_state(out, state, state_identity(model, tok), options, last_logits);
    out.close();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, std::strerror(e));
  }
}

LoadedState load_state_file(const std::string& path, const Model& model, const Tokenizer* tok) {
  FileSource in(path);
  StateReader reader(in);
  LoadedState out;
  out.state = reader.read(model.state_spec(), state_identity(model, tok));
  out.logits = reader.logits();
  out.header = reader.header();
  LINFER_CHECK(out.logits.empty() || int64_t(out.logits.size()) == model.info().vocab_size,
               "{}: the state holds {} logits but this model's vocabulary is {}", path, out.logits.size(),
               model.info().vocab_size);
  return out;
}

}  // namespace linfer
