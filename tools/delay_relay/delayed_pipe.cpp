#include "delayed_pipe.h"

#include <sys/socket.h>

#include <cerrno>

namespace delay_relay {

namespace {

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

}  // namespace

DelayedPipe::DelayedPipe(int from, int to, std::chrono::milliseconds delay, size_t max_held)
    : from_(from), to_(to), delay_(delay), max_held_(max_held), reader_([this] { read_loop(); }),
      writer_([this] { write_loop(); }) {}

DelayedPipe::~DelayedPipe() {
  abort();
  reader_.join();
  writer_.join();
}

void DelayedPipe::abort() {
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
  // Wake a reader blocked in recv and a writer blocked in send.
  ::shutdown(from_, SHUT_RD);
  ::shutdown(to_, SHUT_WR);
}

bool DelayedPipe::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

uint64_t DelayedPipe::bytes() const {
  std::lock_guard lock(mu_);
  return released_;
}

void DelayedPipe::read_loop() {
  std::string buf(size_t(1) << 16, '\0');
  while (true) {
    ssize_t n = ::recv(from_, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    const auto now = Clock::now();  // the chunk's delay counts from here, however long the queue is
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || held_ < max_held_; });
    if (aborted_) return;
    // An error (a reset) ends the stream like a close: the other side learns of it by the end.
    chunks_.push_back({now + delay_, n > 0 ? buf.substr(0, size_t(n)) : std::string()});
    held_ += chunks_.back().data.size();
    cv_.notify_all();
    if (n <= 0) return;
  }
}

void DelayedPipe::write_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return aborted_ || !chunks_.empty(); });
    if (aborted_) break;
    if (cv_.wait_until(lock, chunks_.front().due, [&] { return aborted_; })) break;
    Chunk c = std::move(chunks_.front());
    chunks_.pop_front();
    held_ -= c.data.size();
    cv_.notify_all();  // a reader waiting for room
    if (c.data.empty()) {
      ::shutdown(to_, SHUT_WR);
      break;
    }
    lock.unlock();
    const bool ok = send_all(to_, c.data);
    lock.lock();
    if (!ok) {  // the receiver is gone: stop reading too
      aborted_ = true;
      cv_.notify_all();
      ::shutdown(from_, SHUT_RD);
      break;
    }
    released_ += c.data.size();
  }
  finished_ = true;
}

}  // namespace delay_relay
