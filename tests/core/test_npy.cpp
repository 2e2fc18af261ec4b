// io/npy: files built byte by byte here (the format NumPy writes) parse to the values in them;
// write_npy's bytes parse back exactly; malformed files are Errors naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/npy.h"
#include "linfer/core/error.h"

using namespace linfer;

namespace {

// A .npy file as NumPy 1.x/2.x writes it: magic, version, header length, dict padded to 64 bytes.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  size_t pre = major == 1 ? 10 : 12;
  while ((pre + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  if (major != 1) out += std::string(2, '\0');
  return out + header + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

Tensor parse(const std::string& s) {
  return parse_npy({reinterpret_cast<const std::byte*>(s.data()), s.size()}, "mem.npy");
}

std::string error_of(const std::string& s) {
  try {
    parse(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Npy, ReadsEachDType) {
  Tensor f = parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                            bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6.5f})));
  ASSERT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.shape(), (Shape{2, 3}));
  EXPECT_EQ(f.f32()[5], 6.5f);

  Tensor d = parse(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                            bytes_of(std::vector<double>{0.1, -2, 1e300})));
  ASSERT_EQ(d.dtype(), DType::F64);
  EXPECT_EQ(d.view().as<double>()[2], 1e300);

  Tensor i = parse(make_npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }",
                            bytes_of(std::vector<int32_t>{-7, 42})));
  ASSERT_EQ(i.dtype(), DType::I32);
  EXPECT_EQ(i.view().as<int32_t>()[0], -7);

  Tensor l = parse(make_npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                            bytes_of(std::vector<int64_t>{int64_t(1) << 40}), 2));
  ASSERT_EQ(l.dtype(), DType::I64);
  EXPECT_EQ(l.view().as<int64_t>()[0], int64_t(1) << 40);

  Tensor s = parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                            bytes_of(std::vector<float>{3})));
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.f32()[0], 3.0f);

  Tensor z = parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", ""));
  EXPECT_EQ(z.shape(), (Shape{0, 5}));
}

TEST(Npy, WriteThenReadIsExact) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n;
  for (Shape shape : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 4}, Shape{0, 3}}) {
    std::vector<float> v(size_t(shape_numel(shape)));
    for (auto& x : v) x = n(rng);
    std::string bytes = npy_bytes(v.data(), shape);
    EXPECT_EQ(bytes.size() % 64, (v.size() * 4) % 64);  // data starts 64-byte aligned
    Tensor t = parse(bytes);
    EXPECT_EQ(t.shape(), shape);
    ASSERT_EQ(t.dtype(), DType::F32);
    if (!v.empty()) EXPECT_EQ(std::memcmp(t.f32(), v.data(), v.size() * 4), 0);  // memcmp takes no nulls
  }
  // the header text is what NumPy itself writes
  float one = 1;
  EXPECT_NE(npy_bytes(&one, {1}).find("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"),
            std::string::npos);
  std::vector<float> six(6);
  EXPECT_NE(npy_bytes(six.data(), {2, 3}).find("'shape': (2, 3), }"), std::string::npos);
}

TEST(Npy, FileRoundTrip) {
  auto path = (std::filesystem::temp_directory_path() / fmt::format("linfer_npy_{}.npy", ::getpid())).string();
  std::vector<float> v{1, -2, 3.25f, 4};
  write_npy(path, v.data(), {2, 2});
  Tensor t = read_npy(path);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_EQ(t.f32()[2], 3.25f);
  std::filesystem::remove(path);
  try {
    read_npy(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(Npy, Malformed) {
  std::string four = bytes_of(std::vector<float>{1, 2, 3, 4});
  auto dict = [](const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  };
  EXPECT_NE(error_of("not an npy file at all").find("magic"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict(">f4", "False", "(4,)"), four)).find("'>f4'"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f2", "False", "(4,)"), four)).find("'<f2'"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "True", "(2, 2)"), four)).find("Fortran"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(5,)"), four)).find("needs 20"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(3,)"), four)).find("needs 12"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(-4,)"), four)).find("shape"), std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(4294967296, 4294967296)"), four)).find("overflows"),
            std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(99999999999999999999999,)"), four)).find("overflows"),
            std::string::npos);
  EXPECT_NE(error_of(make_npy("{'fortran_order': False, 'shape': (4,), }", four)).find("descr"),
            std::string::npos);
  EXPECT_NE(error_of(make_npy(dict("<f4", "False", "(4,)"), four, 7)).find("version 7"), std::string::npos);
  std::string good = make_npy(dict("<f4", "False", "(4,)"), four);
  parse(good);
  for (size_t n = 0; n < good.size(); ++n) {
    std::string e = error_of(good.substr(0, n));
    EXPECT_NE(e.find("mem.npy"), std::string::npos) << "length " << n << ": " << e;
  }
  std::string lying = good;
  lying[8] = char(0xff);
  lying[9] = char(0xff);
  EXPECT_NE(error_of(lying).find("exceeds"), std::string::npos);
}
