#include "tokenizer/pre_tokenizer.h"

namespace linfer::tok {
namespace {

struct Span {
  size_t begin, end;
  bool is_match;
};

// Hugging Face's NormalizedString::split: cover `text` with match / non-match spans, then combine
// them according to `behavior`. Appends the resulting non-empty pieces to `out`.
void split_piece(const PreTokenizeStep& step, std::string_view text, std::vector<std::string_view>& out) {
  thread_local std::vector<Span> spans;
  spans.clear();
  size_t prev = 0;
  step.regex->for_each_match(text, [&](size_t begin, size_t end) {
    if (begin > prev) spans.push_back({prev, begin, step.invert});
    spans.push_back({begin, end, !step.invert});
    prev = end;
  });
  if (prev < text.size()) spans.push_back({prev, text.size(), step.invert});

  auto emit = [&](size_t begin, size_t end) {
    if (end > begin) out.push_back(text.substr(begin, end - begin));
  };
  switch (step.behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) emit(s.begin, s.end);
      return;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans)
        if (!s.is_match) emit(s.begin, s.end);
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      // A span joins the previous piece when it is a match following a non-match (merged with
      // previous), or continues a run of the same kind (contiguous).
      std::vector<Span> merged;
      bool previous_match = false;
      for (const Span& s : spans) {
        const bool join = step.behavior == SplitBehavior::kContiguous ? s.is_match == previous_match
                                                                       : s.is_match && !previous_match;
        if (join && !merged.empty()) {
          merged.back().end = s.end;
        } else {
          merged.push_back(s);
        }
        previous_match = s.is_match;
      }
      for (const Span& s : merged) emit(s.begin, s.end);
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<Span> merged;  // built right to left
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) emit(it->begin, it->end);
      return;
    }
  }
}

}  // namespace

void PreTokenizer::run(std::vector<std::string_view>& pieces, std::deque<std::string>& arena) const {
  std::vector<std::string_view> next;
  for (const PreTokenizeStep& step : steps) {
    next.clear();
    for (std::string_view piece : pieces) {
      if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) {
        piece = arena.emplace_back(" " + std::string(piece));
      }
      if (step.regex) {
        split_piece(step, piece, next);
      } else if (!piece.empty()) {
        next.push_back(piece);
      }
    }
    pieces.swap(next);
  }
}

}  // namespace linfer::tok
