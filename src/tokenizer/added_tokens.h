#pragma once
// Added / special tokens ("<|endoftext|>", "<|im_start|>", ...) are found in the text before
// pre-tokenization and map straight to their ids, as Hugging Face's AddedVocabulary does: at each
// step the leftmost match wins, the longest token among those starting there; `single_word`,
// `lstrip` and `rstrip` then apply (Unicode \w and White_Space).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace linfer::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;  // match only where not inside a word
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool normalized = false;   // matched in the normalized text rather than the raw text
  bool special = false;
};

// A piece of text: either plain text (id == -1) or one added token.
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);  // keeps a pointer-free copy
  bool empty() const { return tokens_.empty(); }

  // Appends the segments of `text` to `out`; plain segments are never empty. With skip_special,
  // matches of special tokens are dropped (their text stays plain), as Hugging Face's
  // encode_special_tokens does.
  void split(std::string_view text, bool skip_special, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> child node
    int32_t token = -1;                             // index into tokens_ of the token ending here
  };
  // Longest token starting at text[pos]: its index, or -1; `end` gets its end.
  int32_t longest_at(std::string_view text, size_t pos, size_t& end) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

}  // namespace linfer::tok
