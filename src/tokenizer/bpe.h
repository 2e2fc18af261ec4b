#pragma once
// Byte-pair encoding of one pre-tokenized word, on raw bytes.
//
// Both formats reduce to the same rule: start from one token per byte and repeatedly merge the
// adjacent pair with the lowest rank, leftmost first, until no adjacent pair has a merge.
//   - tokenizer.json: a pair's rank is its line in "merges";
//   - tiktoken: a pair's rank is the rank of the token its concatenation makes (every split of every
//     token into two tokens is a merge).
// Merging uses a min-heap of (rank, position) with lazy invalidation: O(n log n) in the word length,
// so a 100 kB run of spaces costs no more than it must.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace linfer::tok {

struct Merge {
  int32_t rank;
  int32_t result;  // id of the merged token
};

// Token pair -> merge, open addressing: the lookup in the innermost loop of encoding, several times
// faster than std::unordered_map's bucket chains.
class PairMap {
 public:
  void set(uint64_t key, Merge merge);  // insert or overwrite
  const Merge* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = slot_of(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }
  template <class F>
  void for_each(F&& f) const {  // f(key, merge), in no particular order
    for (const Slot& s : slots_)
      if (s.key != kEmpty) f(s.key, s.merge);
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of ids >= 0 has this key
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  size_t slot_of(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Slot> slots_;  // size a power of two, at most half full
  int shift_ = 64;
  size_t size_ = 0;
};

struct BpeModel {
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  PairMap merges;                                  // pair_key(left, right) -> merge
  // Lets std::string_view look up std::string keys without a copy.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> words;  // token bytes -> id
  std::array<int32_t, 256> byte_ids;               // id of each single byte, -1 if none
  bool ignore_merges = false;                      // a word that is a token is emitted as is
  int32_t unk_id = -1;                             // for bytes without a token; they are dropped if -1
  bool fuse_unk = false;                           // consecutive unknown bytes give one unk_id

  BpeModel() { byte_ids.fill(-1); }
  // Fills byte_ids from `words`; call after `words` is complete.
  void index_bytes();
  // Appends the ids of `word` (non-empty raw bytes) to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

}  // namespace linfer::tok
