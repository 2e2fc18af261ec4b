#pragma once
// Runs deploy/nginx-prefill.conf in a private nginx for tests: the upstream's `server` addresses
// replaced by loopback backends, the listen port by a free one, everything else as in the file. nginx
// runs in the foreground (daemon off) with a temp prefix holding its config, logs, pid and temp dirs,
// and is killed when the object goes.
//
//   NginxBalancer lb;
//   ASSERT_TRUE(lb.start({port_a, port_b})) << lb.log();
//   http(lb.port(), "POST", "/v1/prefill", ...);

#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../child_process.h"

namespace pfaas_test {

inline const std::string kDeployConf = std::string(LINFER_SOURCE_DIR) + "/deploy/nginx-prefill.conf";

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The deploy file's text with the upstream block's servers pointing at 127.0.0.1:<backends> (each
// with the first server line's parameters) and `listen` at 127.0.0.1:<port>; "" if the file has no
// upstream block.
inline std::string rewrite_deploy_conf(const std::string& text, const std::vector<int>& backends, int port) {
  const size_t up = text.find("\nupstream ");
  const size_t open = text.find('{', up), close = text.find('}', open);
  if (up == std::string::npos || open == std::string::npos || close == std::string::npos) return "";
  static const std::regex server_line(R"((\n[ \t]*)server[ \t]+[^ \t;\n{]+([^;\n{]*);)");
  std::string block = text.substr(open, close - open), out;
  std::smatch m;
  bool first = true;
  while (std::regex_search(block, m, server_line)) {
    out += m.prefix().str();
    if (first)
      for (int p : backends) out += fmt::format("{}server 127.0.0.1:{}{};", m[1].str(), p, m[2].str());
    first = false;
    block = m.suffix().str();
  }
  out = text.substr(0, open) + out + block + text.substr(close);
  return std::regex_replace(out, std::regex(R"(\n([ \t]*)listen[ \t]+[^;\n]+;)"),
                            fmt::format("\n$1listen 127.0.0.1:{};", port));
}

class NginxBalancer {
 public:
  NginxBalancer() : dir_("nginx") {}
  static bool available() { return !test_proc::which("nginx").empty(); }

  bool start(const std::vector<int>& backends, const std::string& deploy_conf = kDeployConf) {
    port_ = test_proc::free_port();
    const std::string& p = dir_.path();
    std::ofstream(p + "/prefill.conf") << rewrite_deploy_conf(read_file(deploy_conf), backends, port_);
    std::ofstream conf(p + "/nginx.conf");
    // As root nginx would switch its workers to `nobody`, who cannot use this private temp dir.
    if (::geteuid() == 0) conf << "user root;\n";
    conf << fmt::format(
        "daemon off;\nworker_processes 1;\npid {0}/nginx.pid;\nerror_log {0}/error.log info;\n"
        "events {{ worker_connections 256; }}\n"
        "http {{\n  access_log {0}/access.log;\n  client_body_temp_path {0}/body;\n"
        "  proxy_temp_path {0}/proxy;\n  fastcgi_temp_path {0}/fastcgi;\n  uwsgi_temp_path {0}/uwsgi;\n"
        "  scgi_temp_path {0}/scgi;\n  include {0}/prefill.conf;\n}}\n",
        p);
    conf.close();
    return proc_.start({test_proc::which("nginx"), "-p", p, "-c", p + "/nginx.conf", "-e", p + "/error.log"},
                       p + "/stderr.log") &&
           proc_.wait_for_port(port_);
  }
  int port() const { return port_; }
  std::string config() const { return read_file(dir_ / "prefill.conf"); }
  std::string log() const { return proc_.log() + read_file(dir_ / "error.log"); }
  void stop() { proc_.kill(); }

 private:
  test_proc::TempDir dir_;
  test_proc::ChildProcess proc_;
  int port_ = 0;
};

}  // namespace pfaas_test
