// The global options from the command line: out-of-range --threads counts and a system that refuses threads
// end with a clear error and exit status 1, an unknown --activations name with CLI11's usage error; never a
// hang or a crash.

#include <gtest/gtest.h>

#include <string>

#include "../cli_run.h"
#include "linfer/core/thread_pool.h"

namespace {

void expect_error(const CliRun& r, const std::string& needle) {
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(WEXITSTATUS(r.status), 1) << r.out;
  EXPECT_NE(r.out.find("linfer: error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

TEST(CliThreads, OutOfRangeCountsAreRefused) {
  for (const char* bad : {"-1", "-3", "100000"})
    expect_error(run_linfer(std::string("--threads ") + bad + " version", "2>&1"), "out of range");
  const std::string over = std::to_string(linfer::max_threads() + 1);
  expect_error(run_linfer("--threads " + over + " version", "2>&1"), "out of range");
  EXPECT_EQ(run_linfer("--threads 1 version", "2>&1").status, 0);
  EXPECT_EQ(run_linfer("--threads " + std::to_string(linfer::max_threads()) + " version", "2>&1").status, 0);
}

TEST(CliThreads, RefusedThreadCreationIsAnError) {
  if (linfer::max_threads() < 8) GTEST_SKIP() << "needs 2+ cores for --threads 8";
  // 1 GB thread stacks in a 3 GB address space: the system refuses the fourth thread or so.
  expect_error(run_shell(std::string("ulimit -s 1000000 && ulimit -v 3000000 && exec ") + LINFER_BIN +
                         " --threads 8 version 2>&1"),
               "could not start thread");
}

TEST(CliActivations, TakesTheNamesItDocumentsAndRefusesOthers) {
  for (const char* good : {"f32", "q8", "bf16"})
    EXPECT_EQ(run_linfer(std::string("--activations ") + good + " version", "2>&1").status, 0) << good;
  for (const char* bad : {"q4", "F32", "bf", ""}) {
    const CliRun r = run_linfer(std::string("--activations '") + bad + "' version", "2>&1");
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_NE(r.out.find("one of f32, q8, bf16 expected"), std::string::npos) << r.out;
  }
}

}  // namespace
