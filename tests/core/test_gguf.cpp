// io/gguf: files built by the test writer (tests/gguf_writer.h, from the format spec) read back every
// value and tensor byte written; each malformed file is an Error naming the file and what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../gguf_writer.h"
#include "io/gguf.h"
#include "linfer/core/error.h"

using namespace linfer;
using linfer::test::GgufWriter;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

GgufHeader parse(const std::string& file) { return parse_gguf(bytes_of(file), "t.gguf"); }

// The error message parsing `file` gives (fails the test when it parses).
std::string error_of(const std::string& file) {
  try {
    parse(file);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without error";
  return "";
}

std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Two tensors and one key of every value type, nested arrays included.
GgufWriter good() {
  GgufWriter w;
  w.kv_string("general.architecture", "test");
  w.kv("k.u8", GgufWriter::kU8, GgufWriter::le(200, 1));
  w.kv("k.i8", GgufWriter::kI8, GgufWriter::le(uint8_t(-5), 1));
  w.kv("k.u16", GgufWriter::kU16, GgufWriter::le(60000, 2));
  w.kv("k.i16", GgufWriter::kI16, GgufWriter::le(uint16_t(-300), 2));
  w.kv_u32("k.u32", 4000000000u);
  w.kv_i32("k.i32", -7);
  w.kv_f32("k.f32", 1.5f);
  w.kv_bool("k.bool", true);
  w.kv_string("k.str", "hello");
  w.kv_u64("k.u64", 1ull << 40);
  w.kv("k.i64", GgufWriter::kI64, GgufWriter::le(uint64_t(-9), 8));
  w.kv("k.f64", GgufWriter::kF64, GgufWriter::f64(-2.25));
  w.kv_i32s("k.ints", {1, -2, 3});
  w.kv_strings("k.strs", {"a", "", "ccc"});
  w.kv("k.nested", GgufWriter::kArray,
       GgufWriter::array(GgufWriter::kArray, {GgufWriter::array(GgufWriter::kU8, {GgufWriter::le(1, 1)}),
                                              GgufWriter::array(GgufWriter::kU8, {})}));
  w.tensor("a.weight", {3, 2}, GgufWriter::kF32, f32_bytes({1, 2, 3, 4, 5, 6}));
  w.tensor("b.weight", {4}, GgufWriter::kF32, f32_bytes({7, 8, 9, 10}));
  return w;
}

TEST(Gguf, ReadsEveryValueTypeAndTensor) {
  const std::string file = good().build();
  const GgufHeader h = parse(file);
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.get_string("general.architecture"), "test");
  EXPECT_EQ(h.get_int("k.u8"), 200);
  EXPECT_EQ(h.get_int("k.i8"), -5);
  EXPECT_EQ(h.get_int("k.u16"), 60000);
  EXPECT_EQ(h.get_int("k.i16"), -300);
  EXPECT_EQ(h.get_int("k.u32"), 4000000000);
  EXPECT_EQ(h.get_int("k.i32"), -7);
  EXPECT_EQ(h.get_float("k.f32"), 1.5);
  EXPECT_TRUE(h.get_bool("k.bool"));
  EXPECT_EQ(h.get_int("k.u64"), int64_t(1) << 40);
  EXPECT_EQ(h.get_int("k.i64"), -9);
  EXPECT_EQ(h.get_float("k.f64"), -2.25);
  EXPECT_EQ(h.per_layer_ints("k.ints", 3), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(h.per_layer_ints("k.i32", 2), (std::vector<int64_t>{-7, -7}));
  const GgufValue& strs = h.get_array("k.strs", GgufType::String);
  ASSERT_EQ(strs.items.size(), 3u);
  EXPECT_EQ(strs.items[2].str, "ccc");
  const GgufValue& nested = h.get_array("k.nested", GgufType::Array);
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[0].items.at(0).u, 1u);
  EXPECT_TRUE(nested.items[1].items.empty());

  const GgufTensorInfo& a = h.tensor("a.weight");
  EXPECT_EQ(a.ne, (Shape{3, 2}));
  EXPECT_EQ(a.shape, (Shape{2, 3}));  // row-major: ne reversed
  EXPECT_EQ(a.begin % 32, 0u);
  EXPECT_DOUBLE_EQ(a.bits_per_weight(), 32.0);
  float v[6];
  std::memcpy(v, file.data() + a.begin, sizeof v);
  EXPECT_EQ(v[5], 6.0f);
  const GgufTensorInfo& b = h.tensor("b.weight");
  EXPECT_EQ(b.begin - h.data_begin, 32u);  // after a's 24 bytes, aligned
}

TEST(Gguf, VersionTwoReadsAndWrongTypedGettersFail) {
  GgufWriter w = good();
  w.version = 2;
  const GgufHeader h = parse(w.build());
  EXPECT_EQ(h.version, 2u);
  EXPECT_THROW(h.get_int("k.str"), Error);
  EXPECT_THROW(h.get_string("k.u8"), Error);
  EXPECT_THROW(h.get_bool("k.u8"), Error);
  EXPECT_THROW(h.get_int("missing"), Error);
  EXPECT_THROW(h.per_layer_ints("k.ints", 4), Error);
  EXPECT_FALSE(h.opt_int("missing").has_value());
}

TEST(Gguf, FileViewIsZeroCopyAndUnsupportedTypesAreRefusedByName) {
  GgufWriter w = good();
  w.tensor("q.weight", {32, 2}, GgufWriter::kQ4_0, std::string(2 * 18, '\x01'));
  w.tensor("iq.weight", {32, 2}, 20, std::string(2 * 18, '\x01'));  // IQ4_NL: linfer has no kernels for it
  const std::string path = (std::filesystem::temp_directory_path() / "linfer_test_gguf_view.gguf").string();
  { std::ofstream(path, std::ios::binary) << w.build(); }
  ASSERT_TRUE(is_gguf_file(path));
  GgufFile f(path);
  const TensorView a = f.view(f.header().tensor("a.weight"));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.as<float>()[4], 5.0f);
  EXPECT_EQ(static_cast<const void*>(a.data()), static_cast<const void*>(f.bytes(f.header().tensor("a.weight")).data()));
  const GgufTensorInfo& q = f.header().tensor("q.weight");
  EXPECT_DOUBLE_EQ(q.bits_per_weight(), 4.5);
  const TensorView qv = f.view(q);  // quantized: the logical shape, blocks in place
  EXPECT_EQ(qv.dtype(), DType::Q4_0);
  EXPECT_EQ(qv.shape(), (Shape{2, 32}));
  EXPECT_EQ(qv.nbytes(), 36u);
  const GgufTensorInfo& iq = f.header().tensor("iq.weight");
  EXPECT_DOUBLE_EQ(iq.bits_per_weight(), 4.5);
  try {
    f.view(iq);
    ADD_FAILURE() << "an IQ4_NL view was made";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'iq.weight' has type IQ4_NL, which linfer does not support yet"),
              std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  EXPECT_FALSE(is_gguf_file(path));
}

// Each malformed file: the message names the file and says what is wrong.
struct Bad {
  const char* what;         // test label
  std::string file;
  const char* message;      // expected substring
};

std::vector<Bad> bad_files() {
  std::vector<Bad> out;
  const std::string ok = good().build();
  out.push_back({"empty", "", "too short"});
  out.push_back({"magic", "GGUX" + ok.substr(4), "not a GGUF file"});
  {
    GgufWriter w = good();
    w.version = 1;
    out.push_back({"v1", w.build(), "version 1 is not supported"});
    w.version = 0x03000000;  // a big-endian file
    out.push_back({"big endian", w.build(), "little-endian files only"});
  }
  for (size_t cut : {size_t(24), size_t(40), ok.size() / 2, ok.size() - 1}) {
    GgufWriter w = good();
    w.truncate_to = cut;
    out.push_back({"truncated", w.build(), "t.gguf"});
  }
  {
    GgufWriter w = good();
    w.kv_count = 1ull << 40;
    out.push_back({"kv count", w.build(), "metadata entries cannot fit"});
  }
  {
    GgufWriter w = good();
    w.tensor_count = 1ull << 40;
    out.push_back({"tensor count", w.build(), "tensors cannot fit"});
  }
  {
    GgufWriter w = good();
    w.kv_count = 17;  // one more than written: the tensor infos are read as a key
    out.push_back({"kv count +1", w.build(), "t.gguf"});
  }
  {
    GgufWriter w;
    w.kv("k", GgufWriter::kString, GgufWriter::le(1ull << 50, 8) + "abc");
    out.push_back({"long string", w.build(), "claims 1125899906842624 bytes"});
  }
  {
    GgufWriter w;
    w.kv("k", GgufWriter::kArray, GgufWriter::le(GgufWriter::kU32, 4) + GgufWriter::le(1ull << 60, 8));
    out.push_back({"long array", w.build(), "array of 1152921504606846976 u32 elements cannot fit"});
  }
  {
    GgufWriter w;
    std::string v = GgufWriter::le(GgufWriter::kU8, 4) + GgufWriter::le(0, 8);
    for (int i = 0; i < 20; ++i) v = GgufWriter::le(GgufWriter::kArray, 4) + GgufWriter::le(1, 8) + v;
    w.kv("deep", GgufWriter::kArray, v);
    out.push_back({"deep nesting", w.build(), "nested more than"});
  }
  {
    GgufWriter w;
    w.kv("k", 13, "");
    out.push_back({"unknown value type", w.build(), "key 'k': unknown value type 13"});
  }
  {
    GgufWriter w;
    w.kv("k", GgufWriter::kBool, GgufWriter::le(2, 1));
    out.push_back({"bool 2", w.build(), "bool value 2"});
  }
  {
    GgufWriter w = good();
    w.kv_u32("k.u32", 1);
    out.push_back({"duplicate key", w.build(), "key 'k.u32' appears twice"});
  }
  {
    GgufWriter w = good();
    w.kv_u32("general.alignment", 24);
    out.push_back({"alignment", w.build(), "general.alignment = 24 is not a power of two"});
  }
  {
    GgufWriter w = good();
    w.kv_u64("general.alignment", 32);
    out.push_back({"alignment type", w.build(), "'general.alignment' has type u64"});
  }
  {
    GgufWriter w;
    w.tensor("t", {4}, 4, std::string(16, '\0'));  // 4 was Q4_2, removed from ggml
    out.push_back({"unknown tensor type", w.build(), "tensor 't': unknown ggml type 4"});
  }
  {
    GgufWriter w;
    w.tensor("t", {1, 1, 1, 1, 1}, GgufWriter::kF32, std::string(4, '\0'));
    out.push_back({"5 dims", w.build(), "tensor 't': 5 dimensions"});
  }
  {
    GgufWriter w;
    w.tensor("t", {1ull << 62, 1ull << 62}, GgufWriter::kF32, "");
    out.push_back({"dims overflow", w.build(), "tensor 't': shape"});
  }
  {
    GgufWriter w;
    w.tensor("t", {1ull << 61}, GgufWriter::kF32, "");
    out.push_back({"bytes overflow", w.build(), "tensor 't'"});
  }
  {
    GgufWriter w;
    w.tensor("t", {33}, GgufWriter::kQ8_0, std::string(34, '\0'));
    out.push_back({"partial block", w.build(), "not a whole number of 32-element Q8_0 blocks"});
  }
  {
    GgufWriter w = good();
    w.tensor("c", {4}, GgufWriter::kF32, f32_bytes({1, 2, 3, 4})).offset = 1ull << 40;
    out.push_back({"offset past end", w.build(), "tensor 'c': 16 bytes at data offset 1099511627776 run past the end"});
  }
  {
    GgufWriter w = good();
    w.tensor("c", {4}, GgufWriter::kF32, f32_bytes({1, 2, 3, 4})).offset = 16;
    out.push_back({"misaligned offset", w.build(), "tensor 'c': data offset 16 is not a multiple of the alignment 32"});
  }
  {
    GgufWriter w = good();
    w.tensor("c", {8}, GgufWriter::kF32, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8})).offset = 0;
    out.push_back({"overlap", w.build(), "overlap"});
  }
  {
    GgufWriter w;
    w.alignment = 1;
    w.kv_u32("general.alignment", 1);
    w.tensor("t", {1}, GgufWriter::kF32, std::string(4, '\0')).offset = 1;
    w.tensor("u", {1}, GgufWriter::kF32, std::string(4, '\0')).offset = 6;  // (data + 1) % 4, (data + 2) % 4: one is not 0
    out.push_back({"misaligned element", w.build(), "is not aligned to its 4-byte elements"});
  }
  {
    GgufWriter w = good();
    w.tensor("a.weight", {1}, GgufWriter::kF32, std::string(4, '\0'));
    out.push_back({"duplicate tensor", w.build(), "tensor 'a.weight' appears twice"});
  }
  return out;
}

TEST(Gguf, MalformedFilesAreRefusedWithAClearMessage) {
  for (const Bad& b : bad_files()) {
    SCOPED_TRACE(b.what);
    const std::string msg = error_of(b.file);
    EXPECT_NE(msg.find("t.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(b.message), std::string::npos) << msg;
  }
}

// Every proper prefix of a good file is refused (never read past its end: ASan in make fuzz).
TEST(Gguf, EveryTruncationIsRefused) {
  const std::string ok = good().build();
  for (size_t n = 0; n < ok.size(); ++n) EXPECT_THROW(parse(ok.substr(0, n)), Error) << "prefix of " << n << " bytes";
}

}  // namespace
