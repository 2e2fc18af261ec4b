#pragma once
// Byte sinks and sources for the state wire format: one serializer writes the same bytes whether
// they go to memory, a file, a pipe or a socket (the llama.cpp llama-io idea).
//
//   BufferSink buf;              write_state(buf, state, id);        // bytes in buf.bytes()
//   FileSink f("s.lstate");      write_state(f, state, id); f.close();
//   FdSource in(sock_fd, "peer"); StateReader r(in); ...             // reads as bytes arrive
//
// Sources read exactly the bytes asked for or throw linfer::Error ("... truncated ..."); sinks write
// everything or throw. Thread-safety: one thread per sink / source.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace linfer {

class Sink {
 public:
  virtual ~Sink() = default;
  void write(const void* data, size_t n) {
    put(data, n);
    written_ += n;
  }
  uint64_t n_bytes() const { return written_; }  // bytes written so far
  // Pushes buffered bytes on towards the receiver; called after each whole layer of a state, so a
  // buffering sink does not hold a finished layer back while the next one computes.
  virtual void flush() {}

 protected:
  virtual void put(const void* data, size_t n) = 0;

 private:
  uint64_t written_ = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  // Reads exactly n bytes; throws Error naming the source and the offset if the stream ends first.
  void read(void* data, size_t n);
  uint64_t n_bytes() const { return consumed_; }  // bytes read so far
  virtual const std::string& name() const = 0;    // for error messages: a path, "<buffer>", "fd 3"

 protected:
  // Reads up to n bytes (at least 1 unless the stream has ended); returns 0 at end of stream.
  virtual size_t get(void* data, size_t n) = 0;

 private:
  uint64_t consumed_ = 0;
};

class BufferSink : public Sink {
 public:
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 protected:
  void put(const void* data, size_t n) override;

 private:
  std::vector<uint8_t> bytes_;
};

class BufferSource : public Source {
 public:
  explicit BufferSource(std::span<const uint8_t> bytes, std::string name = "<buffer>")
      : bytes_(bytes), name_(std::move(name)) {}
  const std::string& name() const override { return name_; }

 protected:
  size_t get(void* data, size_t n) override;

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  std::string name_;
};

// A file descriptor: a pipe, a socket, stdin / stdout. Does not own the descriptor.
class FdSink : public Sink {
 public:
  explicit FdSink(int fd, std::string name = "") : fd_(fd), name_(name.empty() ? "fd " + std::to_string(fd) : name) {}

 protected:
  void put(const void* data, size_t n) override;
  int fd_;
  std::string name_;
};

class FdSource : public Source {
 public:
  explicit FdSource(int fd, std::string name = "") : fd_(fd), name_(name.empty() ? "fd " + std::to_string(fd) : name) {}
  const std::string& name() const override { return name_; }

 protected:
  size_t get(void* data, size_t n) override;
  int fd_;
  std::string name_;
};

// A file on disk, buffered. close() flushes and reports write errors (the destructor closes too,
// swallowing errors: call close() when the result matters).
class FileSink : public Sink {
 public:
  explicit FileSink(const std::string& path);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  void close();
  void flush() override;

 protected:
  void put(const void* data, size_t n) override;

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
};

class FileSource : public Source {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  const std::string& name() const override { return path_; }

 protected:
  size_t get(void* data, size_t n) override;

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace linfer
