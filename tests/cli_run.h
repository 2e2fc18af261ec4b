#pragma once
// Runs the `linfer` binary (LINFER_BIN, set by CMake for tests/e2e and tests/golden) and captures
// what it prints. `redirect` says what happens to stderr: "2>&1" merges it, "2>/dev/null" drops it,
// "" leaves it on the test's own stderr.

#include <cstdio>
#include <string>

struct CliRun {
  int status = -1;  // as returned by pclose: 0 on success
  std::string out;
};

// Runs a /bin/sh command line and captures its stdout.
inline CliRun run_shell(const std::string& command) {
  CliRun r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.status = pclose(p);
  return r;
}

inline CliRun run_linfer(const std::string& args, const std::string& redirect) {
  return run_shell(std::string(LINFER_BIN) + " " + args + " " + redirect);
}
