// io/safetensors: well-formed single / sharded / index-less folders read back the bytes written;
// every malformed header (built here byte by byte) is an Error naming the file and tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "io/safetensors.h"
#include "linfer/core/error.h"

using namespace linfer;
namespace fs = std::filesystem;

namespace {

struct RawTensor {
  std::string name, dtype;
  Shape shape;
  std::vector<uint8_t> bytes;
};

// A file from a header text and data: u64 little-endian header length, JSON padded with spaces to
// 8 bytes (as the reference writer does), data.
std::string raw(std::string json, const std::string& data) {
  while (json.size() % 8) json += ' ';
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}

// A safetensors file exactly as the format specifies: u64 header length, JSON, data. The header is
// padded with spaces to 8 bytes, as the reference writer does.
std::string build(const std::vector<RawTensor>& ts, const std::string& metadata = "") {
  std::string json = "{";
  if (!metadata.empty()) json += "\"__metadata__\":" + metadata + ",";
  size_t off = 0;
  std::string data;
  for (const auto& t : ts) {
    json += fmt::format("\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}},", t.name,
                        t.dtype, fmt::join(t.shape, ","), off, off + t.bytes.size());
    data.append(t.bytes.begin(), t.bytes.end());
    off += t.bytes.size();
  }
  if (json.back() == ',') json.pop_back();
  json += "}";
  return raw(json, data);
}

RawTensor f32_tensor(const std::string& name, Shape shape, float base) {
  RawTensor t{name, "F32", shape, {}};
  int64_t n = shape_numel(shape);
  for (int64_t i = 0; i < n; ++i) {
    float v = base + float(i);
    auto* p = reinterpret_cast<const uint8_t*>(&v);
    t.bytes.insert(t.bytes.end(), p, p + 4);
  }
  return t;
}

RawTensor bf16_tensor(const std::string& name, Shape shape, float base) {
  RawTensor t{name, "BF16", shape, {}};
  for (int64_t i = 0; i < shape_numel(shape); ++i) {
    uint16_t h = f32_to_bf16(base + float(i));
    t.bytes.push_back(uint8_t(h & 0xff));
    t.bytes.push_back(uint8_t(h >> 8));
  }
  return t;
}

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            fmt::format("linfer_st_{}_{}_{}", ::getpid(), counter++, std::random_device{}());
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

 private:
  fs::path path_;
};

// Runs fn, expects an Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "mem.st");
}

}  // namespace

TEST(Safetensors, SingleFileReadsBackValues) {
  TempDir d;
  d.write("model.safetensors", build({f32_tensor("a.weight", {2, 3}, 1.0f),
                                      bf16_tensor("b.weight", {4}, -2.0f)},
                                     "{\"format\":\"pt\"}"));
  SafetensorsDir w(d.path());
  EXPECT_EQ(w.names(), (std::vector<std::string>{"a.weight", "b.weight"}));
  TensorView a = w.get("a.weight", {2, 3});
  ASSERT_EQ(a.dtype(), DType::F32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.as<float>()[i], 1.0f + float(i));
  TensorView b = w.get("b.weight", {4});
  ASSERT_EQ(b.dtype(), DType::BF16);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bf16_to_f32(b.as<uint16_t>()[i]), -2.0f + float(i));
  EXPECT_TRUE(w.has("a.weight"));
  EXPECT_FALSE(w.has("c"));
  EXPECT_EQ(w.find("c"), nullptr);
  ASSERT_NE(w.find("b.weight"), nullptr);
  EXPECT_EQ(w.find("b.weight")->shape(), (Shape{4}));
  EXPECT_EQ(uintptr_t(a.data()) % 4, 0u);
}

TEST(Safetensors, MetadataParsed) {
  auto h = parse(build({f32_tensor("x", {1}, 0)}, "{\"format\":\"pt\",\"k\":\"v\"}"));
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.at("k"), "v");
  EXPECT_THROW(parse(build({f32_tensor("x", {1}, 0)}, "{\"k\":3}")), Error);
}

TEST(Safetensors, ShardedWithIndex) {
  TempDir d;
  d.write("model-00001-of-00002.safetensors", build({f32_tensor("a", {3}, 0.0f)}));
  d.write("model-00002-of-00002.safetensors", build({f32_tensor("b", {2, 2}, 10.0f)}));
  d.write("model.safetensors.index.json",
          R"({"metadata":{"total_size":28},"weight_map":{"a":"model-00001-of-00002.safetensors",
              "b":"model-00002-of-00002.safetensors"}})");
  SafetensorsDir w(d.path());
  EXPECT_EQ(w.get("b", {2, 2}).as<float>()[3], 13.0f);
  EXPECT_EQ(w.get("a").as<float>()[2], 2.0f);
  EXPECT_NE(w.file_of("b").find("model-00002-of-00002"), std::string::npos);
}

TEST(Safetensors, IndexNamingAMissingShardOrTensor) {
  {
    TempDir d;
    d.write("model-00001-of-00002.safetensors", build({f32_tensor("a", {3}, 0.0f)}));
    d.write("model.safetensors.index.json",
            R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
    expect_error([&] { SafetensorsDir w(d.path()); }, {"model-00002-of-00002.safetensors"});
  }
  {
    TempDir d;
    d.write("s1.safetensors", build({f32_tensor("a", {3}, 0.0f)}));
    d.write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}})");
    expect_error([&] { SafetensorsDir w(d.path()); }, {"'zz'", "s1.safetensors"});
  }
  {
    TempDir d;
    d.write("model.safetensors.index.json", R"({"weight_map":[1,2]})");
    expect_error([&] { SafetensorsDir w(d.path()); }, {"weight_map"});
  }
  {
    TempDir d;
    d.write("model.safetensors.index.json", R"({"weight_map":{"a":"../etc/passwd"}})");
    expect_error([&] { SafetensorsDir w(d.path()); }, {"'a'"});
  }
}

TEST(Safetensors, FolderWithoutIndex) {
  TempDir d;
  d.write("part_b.safetensors", build({f32_tensor("y", {1}, 7.0f)}));
  d.write("part_a.safetensors", build({f32_tensor("x", {2}, 5.0f)}));
  d.write("README.md", "not a tensor file");
  SafetensorsDir w(d.path());
  EXPECT_EQ(w.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(w.get("y").as<float>()[0], 7.0f);
}

TEST(Safetensors, DuplicateTensorAcrossFiles) {
  TempDir d;
  d.write("a.safetensors", build({f32_tensor("x", {1}, 0)}));
  d.write("b.safetensors", build({f32_tensor("x", {1}, 0)}));
  expect_error([&] { SafetensorsDir w(d.path()); }, {"'x'", "a.safetensors", "b.safetensors"});
}

TEST(Safetensors, EmptyFolder) {
  TempDir d;
  expect_error([&] { SafetensorsDir w(d.path()); }, {d.path()});
  expect_error([&] { SafetensorsDir w(d.path() + "/nope"); }, {"nope"});
}

TEST(Safetensors, LookupErrorsNameTensorAndFile) {
  TempDir d;
  RawTensor mask{"mask", "BOOL", {3}, {1, 0, 1}};
  RawTensor ids{"ids", "I64", {2}, std::vector<uint8_t>(16, 0)};
  // BOOL data of 3 bytes: pad so the next tensor stays aligned
  RawTensor pad{"pad", "U8", {5}, std::vector<uint8_t>(5, 0)};
  d.write("model.safetensors", build({mask, pad, ids, f32_tensor("w", {2, 3}, 0)}));
  SafetensorsDir w(d.path());
  expect_error([&] { w.get("missing"); }, {"tensor 'missing' not found in", d.path()});
  expect_error([&] { w.get("w", {3, 2}); }, {"'w'", "model.safetensors", "[2, 3]", "[3, 2]"});
  expect_error([&] { w.get("mask"); }, {"'mask'", "BOOL"});
  expect_error([&] { w.find("mask"); }, {"'mask'", "BOOL"});
  expect_error([&] { w.get("ids", {2}); }, {"'ids'", "I64", "float"});
  EXPECT_EQ(w.get("ids").dtype(), DType::I64);  // representable: fine where a float is not needed
  EXPECT_EQ(w.entry("mask").dtype_name, "BOOL");
  EXPECT_FALSE(w.entry("mask").dtype.has_value());
}

// ---- malformed headers --------------------------------------------------------------------------

TEST(SafetensorsMalformed, TooShortForLength) {
  expect_error([] { parse(std::string(5, '\0')); }, {"mem.st", "too short"});
  expect_error([] { parse(""); }, {"mem.st"});
}

TEST(SafetensorsMalformed, HeaderLengthBeyondFile) {
  std::string f = build({f32_tensor("x", {2}, 0)});
  std::string lie = f;
  lie[0] = char(0xff);
  lie[1] = char(0xff);
  expect_error([&] { parse(lie); }, {"mem.st", "exceeds the file"});
  std::string huge = f;
  for (int i = 0; i < 8; ++i) huge[i] = char(0xff);
  expect_error([&] { parse(huge); }, {"mem.st", "exceeds"});
}

TEST(SafetensorsMalformed, TruncatedAtEveryLength) {
  std::string f = build({f32_tensor("a", {3}, 0), bf16_tensor("b", {5}, 1)});
  parse(f);  // the whole file is fine
  for (size_t n = 0; n < f.size(); ++n) {
    EXPECT_THROW(parse(f.substr(0, n)), Error) << "length " << n;
  }
}

TEST(SafetensorsMalformed, BadJson) {
  expect_error([] { parse(raw("{\"a\": [1, 2", "")); }, {"mem.st", "not valid JSON"});
  expect_error([] { parse(raw("[1, 2, 3]       ", "")); }, {"mem.st", "not an object"});
  expect_error([] { parse(raw("\"str\"", "")); }, {"mem.st"});
}

TEST(SafetensorsMalformed, EntryFields) {
  struct Case {
    std::string json, expect;
  };
  std::string data(16, '\0');
  std::vector<Case> cases = {
      {R"({"t":{"shape":[4],"data_offsets":[0,16]}})", "dtype"},
      {R"({"t":{"dtype":"F99","shape":[4],"data_offsets":[0,16]}})", "F99"},
      {R"({"t":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", "dtype"},
      {R"({"t":{"dtype":"F32","data_offsets":[0,16]}})", "shape"},
      {R"({"t":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", "shape"},
      {R"({"t":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", "negative"},
      {R"({"t":{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}})", "non-integer"},
      {R"({"t":{"dtype":"F32","shape":[4]}})", "data_offsets"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", "data_offsets"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[-4,12]}})", "data_offsets"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[8,4]}})", "outside"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}})", "outside"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", "needs 16"},
      {R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}})", "needs 16"},
      {R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})", "aligned"},
      {R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", "overflows"},
      {R"({"t":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", "overflows"},
      {R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}})", "overflows"},
      {R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]}})", "out-of-range"},
      {R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551615]}})", "outside"},
      {R"({"t":[1,2]})", "not an object"},
      {R"({"__metadata__":[1]})", "__metadata__"},
  };
  for (const auto& c : cases) {
    expect_error([&] { parse(raw(c.json, data)); }, {"mem.st", c.expect});
    if (c.json.find("\"t\"") != std::string::npos)
      expect_error([&] { parse(raw(c.json, data)); }, {"'t'"});
  }
}

TEST(SafetensorsMalformed, ZeroSizedAndScalarTensorsAreFine) {
  auto h = parse(raw(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},
                        "s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                     std::string(4, '\0')));
  ASSERT_EQ(h.tensors.size(), 2u);
}

TEST(SafetensorsMalformed, FileErrorsNamePath) {
  TempDir d;
  std::string p = d.write("model.safetensors", raw(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                                   std::string(8, '\0')));
  expect_error([&] { SafetensorsDir w(d.path()); }, {p, "'w'"});
}

TEST(SafetensorsMalformed, RandomByteCorruptionNeverCrashes) {
  std::string f = build({f32_tensor("a", {3}, 0), bf16_tensor("b", {5}, 1)}, "{\"x\":\"y\"}");
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string g = f;
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) g[rng() % g.size()] ^= char(1 << (rng() % 8));
    try {
      auto h = parse(g);
      for (const auto& e : h.tensors) ASSERT_LE(e.end, g.size());
    } catch (const Error&) {
    }
  }
}
