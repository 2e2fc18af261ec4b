#pragma once
// Stop strings over streamed text: feed the text as it is decoded, get back what is safe to show.
// Text that could be the beginning of a stop string is held back until it is known not to be; when a
// stop string appears, everything from its first byte on is dropped (OpenAI semantics: the stop
// string is not part of the output) and stopped() becomes true.
//
//   StopMatcher m({"\n\n", "END"});
//   out += m.push("Hello EN");   // "Hello " ("EN" might start "END")
//   out += m.push("D of it");    // "" and m.stopped()
//   out += m.flush();            // at a finish for another reason: what was held back
//
// Pieces given to push() are valid UTF-8; what comes back is too (a stop string starts on a
// character boundary, so held-back text does as well). Thread-safety: one matcher per sequence.

#include <string>
#include <string_view>
#include <vector>

namespace linfer {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  std::string push(std::string_view text);
  std::string flush();  // releases held-back text (nothing after a stop)
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;  // non-empty strings
  std::string held_;
  bool stopped_ = false;
};

}  // namespace linfer
