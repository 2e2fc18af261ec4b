// The sampler (runtime/sampling.h) against a float64 reference computed here from the definitions:
// the categorical distribution after temperature, top-k and top-p, and the inverse-CDF draw the
// header documents. Checks: every draw equals the reference's token for the same mt19937_64 stream
// (away from rounding boundaries); empirical frequencies over many seeds pass a chi-square test
// against the exact distribution; excluded tokens are never drawn; same seed, same sequence; greedy
// is argmax with the lowest index among ties; refusals of NaN / +inf logits and bad parameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "linfer/core/error.h"
#include "runtime/sampling.h"

using linfer::Sampler;
using linfer::SamplingParams;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> gaussian_logits(int64_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// The exact distribution, in float64: probability per token and the order in which the sampler
// walks its candidates (vocabulary order when nothing cuts, else z descending, lower index first).
struct Reference {
  std::vector<double> p;       // [vocab]
  std::vector<int32_t> order;  // candidates with p > 0, in walk order
  double nucleus_margin = 1;   // distance of the nucleus' running mass from top_p (boundary safety)
};

Reference reference(const std::vector<float>& logits, const SamplingParams& sp) {
  const int64_t V = int64_t(logits.size());
  std::vector<double> z(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) z[i] = double(logits[i] / sp.temperature);  // step 2: z in float
  std::vector<int32_t> rank(static_cast<size_t>(V));
  std::iota(rank.begin(), rank.end(), 0);
  std::stable_sort(rank.begin(), rank.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
  size_t kept = sp.top_k > 0 ? std::min<size_t>(size_t(sp.top_k), size_t(V)) : size_t(V);
  double top = z[rank[0]], sum = 0;
  for (size_t r = 0; r < kept; ++r) sum += std::exp(z[rank[r]] - top);
  Reference ref;
  if (sp.top_p < 1.0f) {
    double mass = 0;
    size_t n = 0;
    while (n < kept) {
      mass += std::exp(z[rank[n++]] - top) / sum;
      ref.nucleus_margin = std::min(ref.nucleus_margin, std::abs(mass - double(sp.top_p)));
      if (mass >= double(sp.top_p)) break;
    }
    kept = n;
    sum = 0;
    for (size_t r = 0; r < kept; ++r) sum += std::exp(z[rank[r]] - top);
  }
  ref.p.assign(size_t(V), 0.0);
  for (size_t r = 0; r < kept; ++r) ref.p[rank[r]] = std::exp(z[rank[r]] - top) / sum;
  const bool nothing_cuts = (sp.top_k == 0 || sp.top_k >= V) && sp.top_p >= 1.0f;
  if (nothing_cuts) {
    for (int32_t i = 0; i < V; ++i)
      if (ref.p[i] > 0) ref.order.push_back(i);
  } else {
    for (size_t r = 0; r < kept; ++r)
      if (ref.p[rank[r]] > 0) ref.order.push_back(rank[r]);
  }
  return ref;
}

// Every draw equals the reference's inverse-CDF token for u from the same mt19937_64 stream, except
// where u lies within rounding of a boundary: the sampler's weights are float32 (expf within ~1 ulp,
// 2^-24 relative), so a boundary of the normalised running sum may move by a few 1e-8; 3e-7 is safe.
// The fraction of draws skipped is about 2 × 3e-7 × vocab.
void expect_draws_follow_the_algorithm(const std::vector<float>& logits, const SamplingParams& sp, int draws = 2000) {
  const Reference ref = reference(logits, sp);
  ASSERT_GT(ref.nucleus_margin, 1e-5) << "test logits put the nucleus boundary within rounding of top_p";
  Sampler s(sp);
  std::mt19937_64 g(sp.seed);
  int checked = 0;
  for (int d = 0; d < draws; ++d) {
    const double u = double(g() >> 11) * 0x1p-53;
    const int32_t got = s.sample(logits.data(), int64_t(logits.size()));
    double acc = 0, margin = 1;
    int32_t want = -1;
    for (int32_t t : ref.order) {
      acc += ref.p[t];
      margin = std::min(margin, std::abs(acc - u));
      if (want < 0 && u < acc) want = t;
    }
    if (margin < 3e-7) continue;
    ++checked;
    ASSERT_EQ(got, want) << "draw " << d << " (u = " << u << ")";
  }
  EXPECT_GE(checked, draws * 95 / 100);
}

// Chi-square critical value for `df` degrees of freedom at upper tail probability ~1e-6
// (Wilson–Hilferty: (X²/df)^(1/3) is close to normal with mean 1 − 2/(9df), variance 2/(9df)).
double chi2_critical(int df) {
  const double z = 4.753, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

// Draws n_seeds × per_seed tokens (a new Sampler per seed) and checks the counts: never a token of
// probability 0, and a chi-square test against the exact distribution (cells with fewer than 5
// expected draws pooled).
void expect_frequencies_match(const std::vector<float>& logits, SamplingParams sp, int n_seeds = 50,
                              int per_seed = 2000) {
  const Reference ref = reference(logits, sp);
  ASSERT_GT(ref.nucleus_margin, 1e-5);
  const int64_t V = int64_t(logits.size());
  std::vector<int64_t> count(static_cast<size_t>(V), 0);
  for (int seed = 0; seed < n_seeds; ++seed) {
    sp.seed = uint64_t(seed) * 7919 + 1;
    Sampler s(sp);
    for (int i = 0; i < per_seed; ++i) ++count[s.sample(logits.data(), V)];
  }
  const double n = double(n_seeds) * per_seed;
  double x2 = 0, pooled_obs = 0, pooled_exp = 0;
  int cells = 0;
  for (int64_t t = 0; t < V; ++t) {
    if (ref.p[t] == 0) {
      EXPECT_EQ(count[t], 0) << "token " << t << " is excluded but was drawn";
      continue;
    }
    const double e = n * ref.p[t];
    if (e < 5) {
      pooled_obs += double(count[t]), pooled_exp += e;
      continue;
    }
    x2 += (count[t] - e) * (count[t] - e) / e;
    ++cells;
  }
  if (pooled_exp > 0) x2 += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp, ++cells;
  if (cells < 2) return;  // one token can be drawn (top_k 1): the exclusion check above is the test
  EXPECT_LT(x2, chi2_critical(cells - 1)) << "chi-square over " << cells << " cells";
}

int32_t first_max(const std::vector<float>& v) {
  int32_t best = 0;
  for (int32_t i = 1; i < int32_t(v.size()); ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

const std::vector<float>& row64() {
  static const auto v = gaussian_logits(64, 1.5f, 3);
  return v;
}

}  // namespace

TEST(Sampling, GreedyAndNonPositiveTemperatureAreArgmaxLowestIndexOnTies) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    auto v = gaussian_logits(1000, 2.0f, seed);
    for (SamplingParams sp : {SamplingParams{.greedy = true}, SamplingParams{.temperature = 0.0f},
                              SamplingParams{.temperature = -1.0f, .top_k = 5, .top_p = 0.5f}}) {
      Sampler s(sp);
      EXPECT_EQ(s.sample(v.data(), 1000), first_max(v));
    }
  }
  const std::vector<float> tie = {1, 5, 0, 5, 2};
  EXPECT_EQ(Sampler({.greedy = true}).sample(tie.data(), 5), 1);
}

// argmax runs 16 lanes of running maxima then a scan: the largest anywhere (first lanes, the tail past the last
// full block of 16, rows shorter than two blocks), the lowest index among ties, whatever lanes they fall in.
TEST(Sampling, ArgmaxIsTheFirstLargestAtEveryPosition) {
  for (int64_t vocab : {1, 5, 31, 32, 33, 47, 1000, 4099}) {
    auto v = gaussian_logits(vocab, 1.0f, uint32_t(vocab));
    for (int64_t at : {int64_t(0), vocab / 2, vocab - 1, std::min<int64_t>(15, vocab - 1)}) {
      auto w = v;
      w[size_t(at)] = 10.0f;
      EXPECT_EQ(linfer::argmax(w.data(), vocab), at) << vocab;
      for (int64_t later : {at + 1, at + 16, vocab - 1})  // a tie after it: still the first
        if (later > at && later < vocab) {
          auto t = w;
          t[size_t(later)] = 10.0f;
          EXPECT_EQ(linfer::argmax(t.data(), vocab), at) << vocab << " tie at " << later;
        }
    }
  }
}

TEST(Sampling, TemperatureOnlyDrawsFollowTheAlgorithm) {
  for (float t : {1.0f, 0.5f, 2.0f}) {
    SCOPED_TRACE(t);
    expect_draws_follow_the_algorithm(row64(), {.temperature = t, .seed = 11});
  }
  expect_draws_follow_the_algorithm(gaussian_logits(20000, 3.0f, 4), {.temperature = 0.8f, .seed = 5});
}

TEST(Sampling, TopKAndTopPDrawsFollowTheAlgorithm) {
  expect_draws_follow_the_algorithm(row64(), {.temperature = 0.7f, .top_k = 10, .seed = 1});
  expect_draws_follow_the_algorithm(row64(), {.temperature = 0.7f, .top_p = 0.8f, .seed = 2});
  expect_draws_follow_the_algorithm(row64(), {.temperature = 1.3f, .top_k = 20, .top_p = 0.7f, .seed = 3});
  expect_draws_follow_the_algorithm(gaussian_logits(151936, 3.0f, 4), {.temperature = 0.8f, .top_k = 40, .seed = 5}, 300);
}

TEST(Sampling, TemperatureFrequencies) {
  expect_frequencies_match(row64(), {.temperature = 1.0f});
  expect_frequencies_match(row64(), {.temperature = 0.6f});
}

TEST(Sampling, TopKFrequenciesAndExclusion) {
  expect_frequencies_match(row64(), {.temperature = 0.7f, .top_k = 10});
  expect_frequencies_match(row64(), {.temperature = 1.0f, .top_k = 1});
}

TEST(Sampling, TopPFrequenciesAndExclusion) {
  expect_frequencies_match(row64(), {.temperature = 0.7f, .top_p = 0.8f});
  expect_frequencies_match(row64(), {.temperature = 1.3f, .top_k = 20, .top_p = 0.7f});
}

TEST(Sampling, NoCutIncludesEveryToken) {
  // top_k 0, top_k = vocab and top_k > vocab with top_p = 1 all sample the full softmax.
  for (int k : {0, 64, 1000}) {
    SCOPED_TRACE(k);
    const SamplingParams sp{.temperature = 1.5f, .top_k = k, .top_p = 1.0f};
    expect_frequencies_match(row64(), sp);
    const Reference ref = reference(row64(), sp);
    EXPECT_EQ(std::count_if(ref.p.begin(), ref.p.end(), [](double p) { return p > 0; }), 64);
    std::vector<bool> seen(64, false);
    Sampler s({.temperature = 1.5f, .top_k = k, .seed = 9});
    for (int i = 0; i < 20000; ++i) seen[s.sample(row64().data(), 64)] = true;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 64);
  }
}

TEST(Sampling, TiesAtTheTopKBoundaryKeepTheLowerIndex) {
  // rank order: 1 (3), 3 (3), then 2 and 4 tie at 2: top-3 keeps 2, never 4.
  const std::vector<float> v = {1, 3, 2, 3, 2, 0};
  expect_frequencies_match(v, {.top_k = 3});
  Sampler s({.top_k = 3, .seed = 4});
  int drew_2 = 0;
  for (int i = 0; i < 5000; ++i) {
    const int32_t t = s.sample(v.data(), 6);
    EXPECT_TRUE(t == 1 || t == 2 || t == 3) << t;
    drew_2 += t == 2;
  }
  EXPECT_GT(drew_2, 0);
}

TEST(Sampling, SameSeedSameSequenceOtherSeedAnother) {
  std::vector<std::vector<float>> rows;
  for (uint32_t i = 0; i < 200; ++i) rows.push_back(gaussian_logits(300, 1.0f, 100 + i));
  for (SamplingParams sp : {SamplingParams{.temperature = 0.9f}, SamplingParams{.temperature = 0.9f, .top_k = 30},
                            SamplingParams{.temperature = 0.9f, .top_p = 0.9f},
                            SamplingParams{.temperature = 0.9f, .top_k = 50, .top_p = 0.9f}}) {
    auto run = [&](uint64_t seed) {
      SamplingParams p = sp;
      p.seed = seed;
      Sampler s(p);
      std::vector<int32_t> out;
      for (const auto& r : rows) out.push_back(s.sample(r.data(), 300));
      return out;
    };
    EXPECT_EQ(run(42), run(42));
    EXPECT_NE(run(42), run(43));
  }
}

TEST(Sampling, MinusInfinityMasksATokenInEveryPath) {
  std::vector<float> v = row64();
  for (int i = 0; i < 64; i += 2) v[i] = -kInf;  // 32 finite tokens
  for (SamplingParams sp : {SamplingParams{}, SamplingParams{.top_k = 40}, SamplingParams{.top_p = 0.99f},
                            SamplingParams{.top_k = 48, .top_p = 0.999f}}) {
    expect_frequencies_match(v, sp, 10, 2000);
    expect_draws_follow_the_algorithm(v, sp);
  }
}

TEST(Sampling, NonFiniteLogitsAndBadParametersAreRefused) {
  auto refused = [](std::vector<float> v, SamplingParams sp, const std::string& needle) {
    try {
      Sampler(sp).sample(v.data(), int64_t(v.size()));
      ADD_FAILURE() << "not refused: " << needle;
    } catch (const linfer::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  std::vector<float> v = row64();
  for (SamplingParams sp : {SamplingParams{}, SamplingParams{.top_k = 10}, SamplingParams{.top_p = 0.9f}}) {
    auto nan = v;
    nan[7] = std::numeric_limits<float>::quiet_NaN();
    refused(nan, sp, "token 7");
    auto inf = v;
    inf[9] = kInf;
    refused(inf, sp, "token 9");
    refused(std::vector<float>(8, -kInf), sp, "every logit is -inf");
  }
  refused(std::vector<float>(8, 100.0f), {.temperature = 1e-38f}, "temperature");  // 100 / 1e-38 overflows
  refused(v, {.top_p = 0.0f}, "top-p");
  refused(v, {.top_p = 1.5f}, "top-p");
  refused(v, {.top_p = std::numeric_limits<float>::quiet_NaN()}, "top-p");
  refused(v, {.top_k = -1}, "top-k");
  refused(v, {.temperature = std::numeric_limits<float>::quiet_NaN()}, "temperature");
  refused({}, {}, "0 logits");
}
