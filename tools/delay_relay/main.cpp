// delay_relay --listen HOST:PORT --to HOST:PORT --delay-ms D
// Forwards TCP connections from --listen to --to, each chunk in each direction released D ms after
// it was read (tools/delay_relay/relay.h): a link's latency where `tc netem` is missing. Prints
// "delay_relay: listening on HOST:PORT" on stderr once it accepts (port 0: the port it got), runs
// until SIGTERM or SIGINT, then cuts the open connections, prints what it forwarded and exits 0.

#include <signal.h>

#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "relay.h"

int main(int argc, char** argv) {
  CLI::App app("A TCP relay that delays every byte in both directions");
  std::string listen, to;
  int delay_ms = 20;
  app.add_option("--listen", listen, "HOST:PORT to accept on (port 0: any free port)")->required();
  app.add_option("--to", to, "HOST:PORT to forward each connection to")->required();
  app.add_option("--delay-ms", delay_ms, "milliseconds added in each direction")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  // Blocked before any thread starts, so every thread inherits the mask and sigwait gets them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    delay_relay::RelayOptions o{.listen = delay_relay::Endpoint::parse(listen),
                                .upstream = delay_relay::Endpoint::parse(to),
                                .delay = std::chrono::milliseconds(delay_ms)};
    delay_relay::Relay relay(o);
    fmt::print(stderr, "delay_relay: listening on {}:{}, forwarding to {}, {} ms each way\n", o.listen.host,
               relay.port(), to, delay_ms);
    int sig = 0;
    sigwait(&stop, &sig);
    relay.stop();
    const auto s = relay.stats();
    fmt::print(stderr, "delay_relay: stopped; {} connections ({} refused upstream), {} bytes up, {} down\n",
               s.connections, s.refused, s.bytes_up, s.bytes_down);
  } catch (const std::exception& e) {
    fmt::print(stderr, "delay_relay: {}\n", e.what());
    return 2;
  }
  return 0;
}
