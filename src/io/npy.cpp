#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "linfer/core/error.h"
#include "linfer/core/mmap_file.h"

namespace linfer {

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes, then major, minor version

// The header is a Python dict literal; we accept exactly what NumPy writes:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct Header {
  std::string descr;
  bool fortran = false;
  Shape shape;
};

void skip_space(const std::string& s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) ++i;
}

// The value after `'key':`, as the substring up to its end (a quoted string, True/False, a tuple).
std::string value_of(const std::string& h, const std::string& key, const std::string& label) {
  size_t k = h.find("'" + key + "'");
  LINFER_CHECK(k != std::string::npos, "{}: .npy header has no '{}'", label, key);
  size_t i = k + key.size() + 2;
  skip_space(h, i);
  LINFER_CHECK(i < h.size() && h[i] == ':', "{}: .npy header: malformed '{}'", label, key);
  ++i;
  skip_space(h, i);
  LINFER_CHECK(i < h.size(), "{}: .npy header: '{}' has no value", label, key);
  size_t end;
  if (h[i] == '\'') {
    end = h.find('\'', i + 1);
    LINFER_CHECK(end != std::string::npos, "{}: .npy header: unterminated '{}'", label, key);
    return h.substr(i + 1, end - i - 1);
  }
  if (h[i] == '(') {
    end = h.find(')', i);
    LINFER_CHECK(end != std::string::npos, "{}: .npy header: unterminated '{}'", label, key);
    return h.substr(i, end - i + 1);
  }
  end = h.find_first_of(",}", i);
  LINFER_CHECK(end != std::string::npos, "{}: .npy header: malformed '{}'", label, key);
  return h.substr(i, end - i);
}

Shape parse_shape(const std::string& tuple, const std::string& label) {
  Shape shape;
  size_t i = 1;  // after '('
  while (true) {
    skip_space(tuple, i);
    if (i >= tuple.size() || tuple[i] == ')') break;
    int64_t v = 0;
    size_t digits = 0;
    while (i < tuple.size() && tuple[i] >= '0' && tuple[i] <= '9') {
      LINFER_CHECK(v <= (std::numeric_limits<int64_t>::max() - 9) / 10, "{}: .npy shape {} overflows",
                   label, tuple);
      v = v * 10 + (tuple[i++] - '0');
      ++digits;
    }
    LINFER_CHECK(digits > 0, "{}: .npy shape {} is not a tuple of non-negative integers", label, tuple);
    while (i < tuple.size() && tuple[i] == 'L') ++i;  // Python 2 longs
    shape.push_back(v);
    skip_space(tuple, i);
    if (i < tuple.size() && tuple[i] == ',') ++i;
  }
  return shape;
}

Header parse_header(const std::string& h, const std::string& label) {
  Header out;
  out.descr = value_of(h, "descr", label);
  std::string fortran = value_of(h, "fortran_order", label);
  LINFER_CHECK(fortran == "False" || fortran == "True", "{}: .npy fortran_order is '{}'", label, fortran);
  out.fortran = fortran == "True";
  out.shape = parse_shape(value_of(h, "shape", label), label);
  return out;
}

DType dtype_of(const std::string& descr, const std::string& label) {
  if (descr == "<f4") return DType::F32;
  if (descr == "<f8") return DType::F64;
  if (descr == "<i4") return DType::I32;
  if (descr == "<i8") return DType::I64;
  fail("{}: .npy dtype '{}' is not supported (little-endian float32, float64, int32 or int64)", label,
       descr);
}

}  // namespace

std::string npy_bytes(const float* data, const Shape& shape) {
  // Python tuple syntax: "()", "(3,)", "(3, 4)"
  std::string dims = fmt::format("{}", fmt::join(shape, ", "));
  if (shape.size() == 1) dims += ",";
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims);
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends in a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  LINFER_CHECK(header.size() <= 65535, "npy header too long for shape {}", shape_str(shape));

  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(char(header.size() & 0xff));
  out.push_back(char(header.size() >> 8));
  out += header;
  size_t nbytes = size_t(shape_numel(shape)) * 4;
  out.append(reinterpret_cast<const char*>(data), nbytes);
  return out;
}

void write_npy(const std::string& path, const float* data, const Shape& shape) {
  std::string bytes = npy_bytes(data, shape);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  LINFER_CHECK(out.good(), "cannot create {}", path);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  LINFER_CHECK(out.good(), "cannot write {}", path);
}

Tensor parse_npy(std::span<const std::byte> bytes, const std::string& label) {
  LINFER_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), kMagic, 6) == 0,
               "{}: not a .npy file (bad magic)", label);
  auto u8 = [&](size_t i) { return uint32_t(bytes[i]); };
  uint32_t major = u8(6);
  size_t header_len, header_begin;
  if (major == 1) {
    header_len = u8(8) | (u8(9) << 8);
    header_begin = 10;
  } else if (major == 2 || major == 3) {
    LINFER_CHECK(bytes.size() >= 12, "{}: truncated .npy header", label);
    header_len = u8(8) | (u8(9) << 8) | (u8(10) << 16) | (u8(11) << 24);
    header_begin = 12;
  } else {
    fail("{}: .npy format version {} is not supported", label, major);
  }
  LINFER_CHECK(header_len <= bytes.size() - header_begin, "{}: .npy header length {} exceeds the file",
               label, header_len);
  std::string h(reinterpret_cast<const char*>(bytes.data() + header_begin), header_len);
  Header hdr = parse_header(h, label);
  LINFER_CHECK(!hdr.fortran || hdr.shape.size() <= 1, "{}: Fortran-order arrays are not supported",
               label);
  DType dtype = dtype_of(hdr.descr, label);

  uint64_t numel = 1, span = 1;
  for (int64_t d : hdr.shape) {
    LINFER_CHECK(!__builtin_mul_overflow(numel, uint64_t(d), &numel) &&
                     !__builtin_mul_overflow(span, uint64_t(std::max<int64_t>(d, 1)), &span) &&
                     span <= uint64_t(std::numeric_limits<int64_t>::max()) / 8,
                 "{}: .npy shape {} overflows", label, shape_str(hdr.shape));
  }
  size_t data_begin = header_begin + header_len;
  uint64_t nbytes = numel * dtype_size(dtype);
  LINFER_CHECK(bytes.size() - data_begin == nbytes, "{}: .npy {} {} needs {} data bytes, file has {}",
               label, dtype_name(dtype), shape_str(hdr.shape), nbytes, bytes.size() - data_begin);
  Tensor t = Tensor::zeros(hdr.shape, dtype);
  if (nbytes) std::memcpy(t.view().data(), bytes.data() + data_begin, nbytes);
  return t;
}

Tensor read_npy(const std::string& path) {
  MappedFile f(path);
  return parse_npy({f.data(), f.size()}, path);
}

}  // namespace linfer
