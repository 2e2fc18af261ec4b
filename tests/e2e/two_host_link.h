#pragma once
// Two "hosts" for a test: network namespaces A and B (names with the test's pid: parallel runs do not
// collide) joined by a veth pair, A = 10.233.0.1/30 and B = 10.233.0.2/30, each end's egress shaped
// by tc tbf to a rate; with `tc netem` on this kernel, netem adds the one-way delay on each end too
// (netem() says so), else the test adds it itself (tools/delay_relay). Made with iproute2 (`ip`,
// `tc`), which needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN): unavailable() says why not.
//
//   if (auto why = TwoHostLink::unavailable(); !why.empty()) GTEST_SKIP() << why;
//   TwoHostLink link({.rate = "1gbit", .delay_ms = 20});
//   ASSERT_EQ(link.error(), "");
//   { InNetns in(link.ns_a()); server.start(...); }   // the server runs in A
//
// The destructor deletes both namespaces, and with them the veth pair and its qdiscs (processes
// still inside keep a namespace alive: stop them first, i.e. declare them after the link).
// Namespaces left by a test process that died are deleted by the next one.

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <tuple>
#include <string>

#include <fmt/format.h>

#include "../child_process.h"
#include "../cli_run.h"

namespace two_host {

inline const char* const kAddrA = "10.233.0.1";
inline const char* const kAddrB = "10.233.0.2";
inline const char* const kPrefix = "linfer2h";  // namespace names: linfer2h<pid>n<k>a / b

// Runs a shell command line: {exit status, stdout and stderr}.
inline CliRun sh(const std::string& command) { return run_shell(command + " 2>&1"); }

// iproute2's programs by their full path (in /usr/sbin, often not on a user's PATH); "" if missing.
inline std::string ip_bin() { return test_proc::which("ip"); }
inline std::string tc_bin() { return test_proc::which("tc"); }

// The calling thread is in namespace `name` while this lives, then back where it was. Processes
// forked meanwhile stay there, and sockets made meanwhile belong there (the test talks to a server
// in the namespace through them, on its 127.0.0.1 or the veth address).
class InNetns {
 public:
  explicit InNetns(const std::string& name) {
    home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = home_ >= 0 && fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) ::close(fd);
  }
  ~InNetns() {
    if (ok_ && ::setns(home_, CLONE_NEWNET) != 0) std::abort();  // the rest of the test would run in the wrong place
    if (home_ >= 0) ::close(home_);
  }
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  int home_ = -1;
  bool ok_ = false;
};

struct LinkOptions {
  std::string rate = "1gbit";  // tc's units: 1gbit = 10^9 bit/s
  int burst_bytes = 256 << 10;
  int delay_ms = 20;  // one way; netem's where it exists
};

class TwoHostLink {
 public:
  // "" if namespaces can be made here, else why not (for GTEST_SKIP).
  static std::string unavailable() {
    if (ip_bin().empty() || tc_bin().empty())
      return "`ip` or `tc` is missing (Debian package iproute2: make deps)";
    const std::string probe = fmt::format("{}{}probe", kPrefix, ::getpid());
    const CliRun r = sh(ip_bin() + " netns add " + probe);
    if (r.status != 0)
      return "cannot create a network namespace (needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN): `ip netns add` said: " +
             r.out;
    sh(ip_bin() + " netns del " + probe);
    return "";
  }

  explicit TwoHostLink(LinkOptions o) : options_(std::move(o)) {
    static int count = 0;
    const std::string base = fmt::format("{}{}n{}", kPrefix, ::getpid(), ++count);
    a_ = base + "a";
    b_ = base + "b";
    veth_a_ = veth_base() + "a";
    veth_b_ = veth_base() + "b";
    delete_stale();
    const std::string ip = ip_bin(), tc = tc_bin();
    if (!run(ip + " netns add " + a_) || !run(ip + " netns add " + b_)) return;
    if (!run(fmt::format("{} -n {} link add {} type veth peer name {} netns {}", ip, a_, veth_a_, veth_b_, b_))) return;
    for (const auto& [ns, dev, addr] : {std::tuple{a_, veth_a_, kAddrA}, std::tuple{b_, veth_b_, kAddrB}}) {
      if (!run(fmt::format("{} -n {} link set lo up", ip, ns)) ||
          !run(fmt::format("{} -n {} addr add {}/30 dev {}", ip, ns, addr, dev)) ||
          !run(fmt::format("{} -n {} link set {} up", ip, ns, dev)))
        return;
    }
    // netem as the root with tbf under it where netem exists; tbf alone otherwise.
    auto netem = [&](const std::string& ns, const std::string& dev) {
      return fmt::format("{} netns exec {} {} qdisc add dev {} root handle 1: netem delay {}ms limit 100000", ip, ns, tc,
                         dev, options_.delay_ms);
    };
    netem_ = sh(netem(a_, veth_a_)).status == 0;
    for (const auto& [ns, dev] : {std::pair{a_, veth_a_}, std::pair{b_, veth_b_}}) {
      if (netem_ && ns == b_ && !run(netem(ns, dev))) return;
      const std::string parent = netem_ ? "parent 1:1 handle 10:" : "root";
      if (!run(fmt::format("{} netns exec {} {} qdisc add dev {} {} tbf rate {} burst {} latency 20ms", ip, ns, tc, dev,
                           parent, options_.rate, options_.burst_bytes)))
        return;
    }
  }
  ~TwoHostLink() {
    sh(ip_bin() + " netns del " + a_);
    sh(ip_bin() + " netns del " + b_);
  }
  TwoHostLink(const TwoHostLink&) = delete;
  TwoHostLink& operator=(const TwoHostLink&) = delete;

  const std::string& error() const { return error_; }  // "" if the link is up and shaped
  bool netem() const { return netem_; }
  const std::string& ns_a() const { return a_; }
  const std::string& ns_b() const { return b_; }
  const LinkOptions& options() const { return options_; }
  // The veth ends' names less their a / b (interface names have 15 characters at most).
  static std::string veth_base() { return fmt::format("l2h{}", ::getpid() % 10000000); }
  // `tc -s qdisc show` of the veth end in A (a) or B (b).
  std::string qdiscs(char side) const {
    return sh(fmt::format("{} netns exec {} {} -s qdisc show dev {}", ip_bin(), side == 'a' ? a_ : b_, tc_bin(),
                          side == 'a' ? veth_a_ : veth_b_)).out;
  }
  // Bytes the tbf on that end has let out so far (-1 if it is not there).
  double tbf_sent_bytes(char side) const {
    const std::string text = qdiscs(side);
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(R"(qdisc tbf [^\n]*\n\s*Sent (\d+) bytes)"))) return -1;
    return std::stod(m[1]);
  }

 private:
  bool run(const std::string& command) {
    const CliRun r = sh(command);
    if (r.status != 0) error_ = "`" + command + "` failed: " + r.out;
    return r.status == 0;
  }
  // Namespaces of ours whose test process is gone (it crashed before its destructors ran).
  static void delete_stale() {
    const std::string list = sh(ip_bin() + " netns list").out;
    const std::regex ours(std::string(kPrefix) + R"((\d+)(n\d+[ab]|probe))");
    for (auto it = std::sregex_iterator(list.begin(), list.end(), ours); it != std::sregex_iterator(); ++it)
      if (!alive((*it)[1])) sh(ip_bin() + " netns del " + it->str());
  }
  // A process that exists and is not a zombie (a container's init may never reap a dead test).
  static bool alive(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const size_t paren = line.rfind(')');  // "pid (comm) S ...": the state follows the name
    return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
  }

  LinkOptions options_;
  std::string a_, b_, veth_a_, veth_b_, error_;
  bool netem_ = false;
};

}  // namespace two_host
