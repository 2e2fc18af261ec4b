// State wire format: round trips (f32 exact, bf16 = per-element bf16 rounding, zstd), identical bytes
// through every sink, streaming through a pipe while the writer is still writing, and every refusal:
// other model / tokenizer / version / layout / shape, each single flipped bit, each truncation.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "linfer/core/error.h"
#include "runtime/state_format.h"

using namespace linfer;

namespace {

StateSpec hybrid_spec(int64_t scale = 1) {
  StateSpec s;
  // deliberately not in layer order: the writer orders records by (layer, name)
  s.tensors.push_back({1, "mla.latent", StateKind::Growing, {3 * scale}, 0, "[T, R]"});
  s.tensors.push_back({0, "kda.S", StateKind::Fixed, {2, 3, 4 * scale}, 0, "[HV, V, K] v-major"});
  s.tensors.push_back({0, "conv.q", StateKind::Fixed, {5, 3}, 0, "[C, W-1]"});
  s.tensors.push_back({2, "swa.k", StateKind::Ring, {2, scale}, 4, "[T, H, D] ring"});
  return s;
}

const StateIdentity kId{"model-fp-0123456789abcdef", "tok-fp-42"};

SequenceState random_state(const StateSpec& spec, int64_t n_tokens, uint32_t seed) {
  SequenceState s(spec);
  std::mt19937 rng(seed);
  std::normal_distribution<float> n;
  s.set_n_tokens(n_tokens);
  for (size_t i = 0; i < s.n_tensors(); ++i) {
    const auto& t = spec.tensors[i];
    if (t.kind == StateKind::Growing) s.append_rows(i, n_tokens);
    int64_t stored = t.kind == StateKind::Ring ? t.capacity : s.rows(i);
    for (int64_t k = 0; k < stored * s.row_elems(i); ++k) s.data(i)[k] = n(rng);
  }
  return s;
}

std::vector<uint8_t> to_bytes(const SequenceState& s, const StateWriteOptions& o = {},
                              const StateIdentity& id = kId) {
  BufferSink sink;
  write_state(sink, s, id, o);
  EXPECT_EQ(sink.n_bytes(), sink.bytes().size());
  return sink.take();
}

SequenceState from_bytes(const std::vector<uint8_t>& b, const StateSpec& spec, const StateIdentity& id = kId) {
  BufferSource src(b, "blob");
  StateReader r(src);
  return r.read(spec, id);
}

std::string error_of(const std::vector<uint8_t>& b, const StateSpec& spec, const StateIdentity& id = kId) {
  try {
    from_bytes(b, spec, id);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// The live rows of tensor i in token order (what must survive a round trip; a ring's dead slots
// need not).
std::vector<float> live(const SequenceState& s, size_t i) {
  const auto& t = s.spec().tensors[i];
  std::vector<float> out;
  int64_t row = s.row_elems(i);
  for (int64_t j = 0; j < s.rows(i); ++j) {
    int64_t slot = t.kind == StateKind::Ring ? (s.n_tokens() - s.rows(i) + j) % t.capacity : j;
    out.insert(out.end(), s.data(i) + slot * row, s.data(i) + (slot + 1) * row);
  }
  return out;
}

void expect_same(const SequenceState& a, const SequenceState& b) {
  ASSERT_EQ(a.n_tokens(), b.n_tokens());
  ASSERT_EQ(a.n_tensors(), b.n_tensors());
  for (size_t i = 0; i < a.n_tensors(); ++i) {
    ASSERT_EQ(a.rows(i), b.rows(i)) << i;
    EXPECT_EQ(live(a, i), live(b, i)) << "tensor " << i;
  }
}

}  // namespace

TEST(StateFormat, F32RoundTripIsExact) {
  StateSpec spec = hybrid_spec();
  for (int64_t n : {0, 1, 3, 4, 5, 64, 65, 300}) {
    SequenceState s = random_state(spec, n, uint32_t(n));
    SequenceState back = from_bytes(to_bytes(s), spec);
    expect_same(s, back);
  }
}

TEST(StateFormat, RingRowsLandInTheirSlots) {
  StateSpec spec = hybrid_spec();
  SequenceState s = random_state(spec, 7, 1);  // ring of 4 wrapped: tokens 3..6 in slots 3,0,1,2
  SequenceState back = from_bytes(to_bytes(s), spec);
  for (int k = 0; k < 4 * 2; ++k) EXPECT_EQ(back.data(3)[k], s.data(3)[k]);
  SequenceState part = random_state(spec, 2, 2);  // ring not yet full: slots 0, 1 live
  back = from_bytes(to_bytes(part), spec);
  for (int k = 0; k < 2 * 2; ++k) EXPECT_EQ(back.data(3)[k], part.data(3)[k]);
}

TEST(StateFormat, Bf16RoundTripRoundsEachElement) {
  StateSpec spec = hybrid_spec();
  SequenceState s = random_state(spec, 65, 3);
  auto b16 = to_bytes(s, {.dtype = DType::BF16});
  auto f32 = to_bytes(s);
  EXPECT_LT(b16.size(), f32.size());
  SequenceState back = from_bytes(b16, spec);
  for (size_t i = 0; i < s.n_tensors(); ++i) {
    auto want = live(s, i), got = live(back, i);
    ASSERT_EQ(want.size(), got.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k], bf16_to_f32(f32_to_bf16(want[k])));
  }
}

TEST(StateFormat, CompressedRoundTrip) {
  StateSpec spec = hybrid_spec(64);
  SequenceState s = random_state(spec, 300, 4);
  for (DType dt : {DType::F32, DType::BF16}) {
    auto z = to_bytes(s, {.dtype = dt, .compress = true});
    SequenceState back = from_bytes(z, spec);
    SequenceState ref = from_bytes(to_bytes(s, {.dtype = dt}), spec);
    expect_same(ref, back);
  }
  SequenceState zeros(spec);  // a fresh state compresses to almost nothing
  zeros.set_n_tokens(0);
  EXPECT_LT(to_bytes(zeros, {.compress = true}).size() * 4, to_bytes(zeros).size());
}

TEST(StateFormat, HeaderDescribesEveryTensor) {
  StateSpec spec = hybrid_spec();
  SequenceState s = random_state(spec, 6, 5);
  auto b = to_bytes(s, {.dtype = DType::BF16, .compress = true});
  BufferSource src(b);
  StateReader r(src);
  const StateHeader& h = r.header();
  EXPECT_EQ(h.version, kStateFormatVersion);
  EXPECT_EQ(h.model_fingerprint, kId.model_fingerprint);
  EXPECT_EQ(h.tokenizer_fingerprint, kId.tokenizer_fingerprint);
  EXPECT_EQ(h.n_tokens, 6);
  ASSERT_EQ(h.tensors.size(), 4u);
  // (layer, name) order
  EXPECT_EQ(h.tensors[0].name, "conv.q");
  EXPECT_EQ(h.tensors[1].name, "kda.S");
  EXPECT_EQ(h.tensors[2].name, "mla.latent");
  EXPECT_EQ(h.tensors[3].name, "swa.k");
  EXPECT_EQ(h.tensors[2].rows, 6);
  EXPECT_EQ(h.tensors[3].rows, 4);
  EXPECT_EQ(h.tensors[3].capacity, 4);
  EXPECT_EQ(h.tensors[1].layout, "[HV, V, K] v-major");
  EXPECT_EQ(h.tensors[1].raw_bytes, 24u * 2);
  EXPECT_EQ(h.tensors[3].dtype, DType::BF16);
  EXPECT_TRUE(h.tensors[3].compressed);
  auto stored = r.verify();
  ASSERT_EQ(stored.size(), 4u);
  uint64_t payload = 0;
  for (auto n : stored) payload += n;
  // framing: 8 magic + 4 version + 4 length + body + 8 hash; 24 + 8 per record; 16 trailer
  EXPECT_LT(payload, b.size());
}

TEST(StateFormat, SameBytesThroughEverySink) {
  StateSpec spec = hybrid_spec();
  SequenceState s = random_state(spec, 9, 6);
  auto buf = to_bytes(s, {.compress = true});
  auto path = (std::filesystem::temp_directory_path() / fmt::format("linfer_state_{}.lstate", ::getpid())).string();
  {
    FileSink f(path);
    write_state(f, s, kId, {.compress = true});
    f.close();
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file, buf);
  FileSource fs(path);
  StateReader r(fs);
  expect_same(s, r.read(spec, kId));
  std::filesystem::remove(path);
}

TEST(StateFormat, StreamsThroughAPipeWhileWriting) {
  // A state several times larger than a pipe's buffer: the writer blocks until the reader drains it,
  // so this passes only if the reader consumes records while the writer is still producing them.
  StateSpec spec = hybrid_spec(4096);
  SequenceState s = random_state(spec, 100, 7);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  std::vector<uint8_t> reference = to_bytes(s);
  ASSERT_GT(reference.size(), 1u << 20);
  std::thread writer([&] {
    FdSink out(fds[1], "pipe");
    write_state(out, s, kId);
    ::close(fds[1]);
  });
  FdSource in(fds[0], "pipe");
  StateReader r(in);
  SequenceState back = r.read(spec, kId);
  writer.join();
  ::close(fds[0]);
  expect_same(s, back);
  EXPECT_EQ(in.n_bytes(), reference.size());
}

TEST(StateFormat, RefusesAnotherModelOrTokenizer) {
  StateSpec spec = hybrid_spec();
  auto b = to_bytes(random_state(spec, 3, 8), {}, {"ab12cd34ef56aa77bb88", "tok"});
  auto e = error_of(b, spec, {"cd34ab12ef56cc99dd00", "tok"});
  EXPECT_NE(e.find("state was written by model ab12cd34ef56aa77bb88 but this model is cd34ab12ef56cc99dd00"),
            std::string::npos) << e;
  e = error_of(b, spec, {"ab12cd34ef56aa77bb88", "other-tokenizer"});
  EXPECT_NE(e.find("tokenizer"), std::string::npos) << e;
  // a token-id interface (no tokenizer) accepts it
  EXPECT_NO_THROW(from_bytes(b, spec, {"ab12cd34ef56aa77bb88", ""}));
}

TEST(StateFormat, RefusesAnotherLayoutShapeOrKind) {
  StateSpec spec = hybrid_spec();
  auto b = to_bytes(random_state(spec, 5, 9));
  {
    StateSpec other = spec;
    other.tensors[1].layout = "[HV, K, V] k-major";
    auto e = error_of(b, other);
    EXPECT_NE(e.find("'kda.S'"), std::string::npos) << e;
    EXPECT_NE(e.find("[HV, K, V] k-major"), std::string::npos) << e;
  }
  {
    StateSpec other = spec;
    other.tensors[1].shape = {2, 4, 3};
    auto e = error_of(b, other);
    EXPECT_NE(e.find("[2, 4, 3]"), std::string::npos) << e;
  }
  {
    StateSpec other = spec;
    other.tensors[3].capacity = 8;
    EXPECT_NE(error_of(b, other).find("'swa.k'"), std::string::npos);
  }
  {
    StateSpec other = spec;
    other.tensors[0].kind = StateKind::Fixed;
    EXPECT_NE(error_of(b, other).find("'mla.latent'"), std::string::npos);
  }
  {
    StateSpec other = spec;
    other.tensors.pop_back();
    EXPECT_NE(error_of(b, other).find("4 tensors"), std::string::npos);
  }
  {
    StateSpec other = spec;
    other.tensors[2].name = "conv.k";
    EXPECT_NE(error_of(b, other).find("does not exist"), std::string::npos);
  }
}

TEST(StateFormat, RefusesAnotherFormatVersion) {
  StateSpec spec = hybrid_spec();
  auto b = to_bytes(random_state(spec, 1, 10));
  b[8] = 2;  // version field follows the 8-byte magic
  EXPECT_NE(error_of(b, spec).find("format version 2"), std::string::npos);
  b[8] = 1;
  b[0] = 'X';
  EXPECT_NE(error_of(b, spec).find("not a linfer state"), std::string::npos);
}

TEST(StateFormat, RefusesEverySingleBitFlip) {
  StateSpec spec = hybrid_spec();
  for (bool compress : {false, true}) {
    auto good = to_bytes(random_state(spec, 6, 11), {.compress = compress});
    ASSERT_NO_THROW(from_bytes(good, spec));
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
      auto bad = good;
      bad[bit / 8] ^= uint8_t(1u << (bit % 8));
      EXPECT_NE(error_of(bad, spec), "<no error>") << "bit " << bit << " of " << good.size() * 8;
    }
  }
}

TEST(StateFormat, RefusesEveryTruncation) {
  StateSpec spec = hybrid_spec();
  auto good = to_bytes(random_state(spec, 6, 12), {.compress = true});
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + n);
    auto e = error_of(cut, spec);
    EXPECT_NE(e.find("blob"), std::string::npos) << n << ": " << e;
    if (n >= 16) {
      EXPECT_NE(e.find("truncated"), std::string::npos) << n << ": " << e;
    }
  }
}

TEST(StateFormat, RefusesALargerStateTruncatedAtRandomLengths) {
  StateSpec spec = hybrid_spec(512);
  auto good = to_bytes(random_state(spec, 200, 13), {.dtype = DType::BF16});
  std::mt19937 rng(1);
  for (int k = 0; k < 50; ++k) {
    size_t n = rng() % good.size();
    std::vector<uint8_t> cut(good.begin(), good.begin() + n);
    EXPECT_NE(error_of(cut, spec).find("truncated"), std::string::npos) << n;
  }
}

TEST(StateFormat, HostileHeadersAreRefusedBeforeAllocating) {
  StateSpec spec = hybrid_spec();
  BufferSource empty(std::span<const uint8_t>{}, "blob");
  EXPECT_THROW(StateReader{empty}, Error);
  // a record claiming a terabyte is refused by the reader's limit, not attempted
  SequenceState s = random_state(spec, 3, 14);
  auto b = to_bytes(s);
  BufferSource src(b, "blob");
  EXPECT_THROW((StateReader{src, {.max_record_bytes = 16}}), Error);
}

TEST(StateFormat, CarriesTheLastLogits) {
  StateSpec spec = hybrid_spec();
  SequenceState s = random_state(spec, 5, 15);
  std::vector<float> logits(37);
  for (size_t v = 0; v < logits.size(); ++v) logits[v] = float(v) * 0.37f - 3.0f;
  for (bool compress : {false, true}) {
    BufferSink sink;
    write_state(sink, s, kId, {.dtype = DType::BF16, .compress = compress}, logits);
    BufferSource src(sink.bytes(), "blob");
    StateReader r(src);
    EXPECT_EQ(r.header().logits_vocab, 37);
    SequenceState back = r.read(spec, kId);
    EXPECT_EQ(r.logits(), logits);  // float32 whatever the state dtype
    // and every bit of it is covered by a checksum
    auto good = sink.bytes();
    for (size_t bit = good.size() * 8 - 8 * (16 + 8 + 37 * 4); bit < good.size() * 8; bit += 7) {
      auto bad = good;
      bad[bit / 8] ^= uint8_t(1u << (bit % 8));
      EXPECT_NE(error_of(bad, spec), "<no error>") << bit;
    }
  }
  // without logits: none come back
  auto b = to_bytes(s);
  BufferSource src(b);
  StateReader r(src);
  r.read(spec, kId);
  EXPECT_TRUE(r.logits().empty());
}
