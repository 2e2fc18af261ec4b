#include "tokenizer/bpe.h"

#include <algorithm>

namespace linfer::tok {
namespace {

struct Symbol {
  int32_t id;    // -1 once merged into its left neighbour
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
};

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t left, right;
  int32_t result;
  // std::*_heap build max-heaps; "greater" puts the lowest rank, then the leftmost, on top.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void PairMap::set(uint64_t key, Merge merge) {
  if (2 * (size_ + 1) > slots_.size()) {  // grow to keep probes short
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : 2 * old.size(), Slot{});
    shift_ = 64 - __builtin_ctzll(slots_.size());
    size_ = 0;
    for (const Slot& s : old)
      if (s.key != kEmpty) set(s.key, s.merge);
  }
  size_t i = slot_of(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = {key, merge};
}

void BpeModel::index_bytes() {
  byte_ids.fill(-1);
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    auto it = words.find(std::string_view(&byte, 1));
    if (it != words.end()) byte_ids[b] = it->second;
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    auto it = words.find(word);
    if (it != words.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  for (const char ch : word) {
    int32_t id = byte_ids[static_cast<uint8_t>(ch)];
    if (id < 0) {
      if (unk_id < 0) continue;
      if (fuse_unk && !symbols.empty() && symbols.back().id == unk_id) continue;
      id = unk_id;
    }
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1});
    if (n > 0) symbols[n - 1].next = n;
  }
  if (symbols.empty()) return;

  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const Merge* m = merges.find(pair_key(symbols[pos].id, symbols[next].id));
    if (!m) return;
    heap.push_back({m->rank, pos, symbols[pos].id, symbols[next].id, m->result});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) consider(pos);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.pos];
    // Stale entries: the left symbol was merged away or changed, or its right neighbour changed.
    if (left.id != c.left || left.next < 0 || symbols[left.next].id != c.right) continue;
    Symbol& right = symbols[left.next];
    left.id = c.result;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  for (int32_t pos = 0; pos >= 0; pos = symbols[pos].next) out.push_back(symbols[pos].id);
}

}  // namespace linfer::tok
