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

LoadedState load_state_file(const std::string& path, const Model& model, const Tokenizer* tok, StateOrigin accept) {
  FileSource in(path);
  StateReader reader(in);
  LoadedState out;
  StateIdentity id = state_identity(model, tok);
  if (accept == StateOrigin::OtherWeights) {
    // Fingerprints are "<architecture>-<hash>": other weights of the same architecture only; the reader
    // still checks every tensor's layer, role, shape and layout against this model.
    const std::string& theirs = reader.header().model_fingerprint;
    auto arch = [](const std::string& fp) { return fp.substr(0, fp.rfind('-')); };
    LINFER_CHECK(arch(theirs) == arch(id.model_fingerprint), "{}: state was written by a {} model but this model is {}",
                 path, arch(theirs), arch(id.model_fingerprint));
    id.model_fingerprint = theirs;
  }
  out.state = reader.read(model.state_spec(), id);
  out.logits = reader.logits();
  out.header = reader.header();
  LINFER_CHECK(out.logits.empty() || int64_t(out.logits.size()) == model.info().vocab_size,
               "{}: the state holds {} logits but this model's vocabulary is {}", path, out.logits.size(),
               model.info().vocab_size);
  return out;
}

}  // namespace linfer
