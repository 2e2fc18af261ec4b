#include "runtime/state_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "linfer/core/error.h"

namespace linfer {

namespace {

constexpr size_t kFileBuffer = 1 << 20;

// write(2) until done: pipes and sockets take partial writes.
void write_all(int fd, const void* data, size_t n, const std::string& name) {
  auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write to {}: {}", name, w < 0 ? std::strerror(errno) : "wrote nothing");
    p += w;
    n -= size_t(w);
  }
}

size_t read_some(int fd, void* data, size_t n, const std::string& name) {
  while (true) {
    ssize_t r = ::read(fd, data, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read {}: {}", name, std::strerror(errno));
    return size_t(r);
  }
}

}  // namespace

void Source::read(void* data, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    size_t got = get(p, n);
    if (got == 0)
      fail("{}: truncated: the stream ended after {} bytes, {} more expected", name(), consumed_, n);
    p += got;
    n -= got;
    consumed_ += got;
  }
}

void BufferSink::put(const void* data, size_t n) {
  auto* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + n);
}

size_t BufferSource::get(void* data, size_t n) {
  size_t k = std::min(n, bytes_.size() - pos_);
  if (k) std::memcpy(data, bytes_.data() + pos_, k);
  pos_ += k;
  return k;
}

void FdSink::put(const void* data, size_t n) { write_all(fd_, data, n, name_); }

size_t FdSource::get(void* data, size_t n) { return read_some(fd_, data, n, name_); }

FileSink::FileSink(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create {}: {}", path, std::strerror(errno));
  buf_.reserve(kFileBuffer);
}

FileSink::~FileSink() {
  try {
    close();
  } catch (const Error&) {
  }
}

void FileSink::put(const void* data, size_t n) {
  LINFER_CHECK(fd_ >= 0, "{}: write after close", path_);
  if (buf_.size() + n > kFileBuffer) flush();
  if (n >= kFileBuffer) {
    write_all(fd_, data, n, path_);
    return;
  }
  auto* p = static_cast<const uint8_t*>(data);
  buf_.insert(buf_.end(), p, p + n);
}

void FileSink::flush() {
  LINFER_CHECK(fd_ >= 0, "{}: write after close", path_);
  write_all(fd_, buf_.data(), buf_.size(), path_);
  buf_.clear();
}

void FileSink::close() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;
  try {
    write_all(fd, buf_.data(), buf_.size(), path_);
  } catch (...) {
    ::close(fd);
    throw;
  }
  buf_.clear();
  if (::close(fd) != 0) fail("cannot write {}: {}", path_, std::strerror(errno));
}

FileSource::FileSource(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open {}: {}", path, std::strerror(errno));
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

size_t FileSource::get(void* data, size_t n) { return read_some(fd_, data, n, path_); }

}  // namespace linfer
