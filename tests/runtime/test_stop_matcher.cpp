// StopMatcher against the definition, on random texts cut into random pieces: as soon as the text so
// far contains a stop string, the output is the text before the earliest one (all of it when none
// occurs); what has been released is always a prefix of that; text is held back only while it could
// start a stop string.
#include <gtest/gtest.h>

#include <random>

#include "runtime/stop_matcher.h"

using namespace linfer;

TEST(StopMatcher, Examples) {
  StopMatcher m({"\n\n", "END"});
  EXPECT_EQ(m.push("Hello EN"), "Hello ");
  EXPECT_EQ(m.push("D of it"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");

  StopMatcher n({"abc"});
  EXPECT_EQ(n.push("xxab"), "xx");
  EXPECT_EQ(n.push("x"), "abx");  // not a stop after all: released
  EXPECT_EQ(n.push("a"), "");
  EXPECT_EQ(n.flush(), "a");      // finished for another reason
  EXPECT_FALSE(n.stopped());

  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
  StopMatcher empty_stop({""});  // an empty stop string never matches
  EXPECT_EQ(empty_stop.push("abc"), "abc");
  // Overlapping candidates: the earliest occurrence wins.
  StopMatcher o({"bcd", "ab"});
  EXPECT_EQ(o.push("xabcd"), "x");
}

TEST(StopMatcher, MatchesTheDefinitionOnRandomPieces) {
  // The definition, piece by piece (as text arrives token by token, the way vLLM checks): after each
  // piece, if the text so far contains a stop string, the output is the text before the earliest one.
  std::mt19937 rng(5);
  const std::string alphabet = "ab\n";
  for (int trial = 0; trial < 5000; ++trial) {
    std::vector<std::string> pieces;
    const int n_pieces = int(rng() % 10);
    for (int i = 0; i < n_pieces; ++i) {
      std::string p;
      const int pl = int(rng() % 4);
      for (int j = 0; j < pl; ++j) p += alphabet[rng() % alphabet.size()];
      pieces.push_back(p);
    }
    std::vector<std::string> stops;
    const int ns = int(rng() % 3);
    for (int i = 0; i < ns; ++i) {
      std::string s;
      const int sl = 1 + int(rng() % 4);
      for (int j = 0; j < sl; ++j) s += alphabet[rng() % alphabet.size()];
      stops.push_back(s);
    }
    std::string want, seen;
    bool stopped = false;
    for (const auto& p : pieces) {
      seen += p;
      size_t first = std::string::npos;
      for (const auto& s : stops) first = std::min(first, seen.find(s));
      if (first != std::string::npos) {
        want = seen.substr(0, first);
        stopped = true;
        break;
      }
    }
    if (!stopped) want = seen;

    StopMatcher m(stops);
    std::string got;
    seen.clear();
    for (const auto& p : pieces) {
      if (m.stopped()) break;
      seen += p;
      got += m.push(p);
      ASSERT_EQ(want.compare(0, got.size(), got), 0) << "released text is not a prefix of the answer";
      if (!m.stopped()) {
        // What is held back is exactly the longest tail that could begin a stop string.
        size_t keep = 0;
        for (const auto& s : stops)
          for (size_t k = 1; k < s.size() && k <= seen.size(); ++k)
            if (seen.compare(seen.size() - k, k, s, 0, k) == 0) keep = std::max(keep, k);
        ASSERT_EQ(got.size(), seen.size() - keep);
      }
    }
    got += m.flush();
    EXPECT_EQ(got, want);
    EXPECT_EQ(m.stopped(), stopped);
  }
}
