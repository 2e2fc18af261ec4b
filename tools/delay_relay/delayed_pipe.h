#pragma once
// One direction of a delaying TCP relay: bytes read from socket `from` are written to socket `to`
// `delay` after they were read. Reading never waits for the delay (a reader thread takes each chunk
// as it arrives, a writer thread releases it when it is due), so the pipe adds latency without
// cutting throughput: at rate R it holds about R x delay bytes (at most `max_held`; beyond that the
// reader waits, and TCP's flow control slows the sender).
//
//   DelayedPipe up(client_fd, server_fd, 20ms), down(server_fd, client_fd, 20ms);
//   up.wait(); down.wait();  // both ends closed their side; close the fds
//
// End of stream travels like data: when `from` reaches its end, `to` gets shutdown(SHUT_WR) once the
// bytes before it were released. abort() stops both threads at once (the fds stay open; the owner
// closes them). Thread-safety: abort(), finished() and bytes() from any thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace delay_relay {

class DelayedPipe {
 public:
  DelayedPipe(int from, int to, std::chrono::milliseconds delay, size_t max_held = size_t(32) << 20);
  ~DelayedPipe();  // abort() and join
  DelayedPipe(const DelayedPipe&) = delete;
  DelayedPipe& operator=(const DelayedPipe&) = delete;

  void abort();
  bool finished() const;  // end of stream delivered, or aborted
  uint64_t bytes() const;  // released to `to` so far

 private:
  using Clock = std::chrono::steady_clock;
  struct Chunk {
    Clock::time_point due;
    std::string data;  // empty: the end of the stream
  };
  void read_loop();
  void write_loop();

  const int from_, to_;
  const std::chrono::milliseconds delay_;
  const size_t max_held_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_;  // in the order read; due times never decrease
  size_t held_ = 0;           // bytes in chunks_
  uint64_t released_ = 0;
  bool aborted_ = false, finished_ = false;
  std::thread reader_, writer_;  // last: they use everything above
};

}  // namespace delay_relay
