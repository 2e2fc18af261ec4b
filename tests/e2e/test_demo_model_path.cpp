// Finding the demo model without --model: `cmake --install` gives a prefix whose bin/linfer runs the
// demo from share/linfer/demo; a binary copied elsewhere prefers a model beside it to the source tree
// it was built from; LINFER_DEMO_MODEL comes first and must name a model folder.
//
// Which folder was used is told apart by output: a fixture model (tests/golden/mamba2_a) placed
// where the demo should be gives different ids than the demo itself.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "../cli_run.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSource = LINFER_SOURCE_DIR;
const fs::path kOther = kSource / "tests/golden/mamba2_a";  // a model that is not the demo
const std::string kArgs = " generate --prompt-ids 1,2,3 -n 4 --greedy --print-ids";

// Runs `binary` + kArgs with LINFER_DEMO_MODEL unset unless `env` gives it; stdout only.
CliRun generate(const fs::path& binary, const std::string& env = "env -u LINFER_DEMO_MODEL") {
  return run_shell(env + " " + binary.string() + kArgs + " 2>/dev/null");
}

class DemoModelPath : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("linfer_demo_path_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    demo_ = generate(LINFER_BIN);
    ASSERT_EQ(demo_.status, 0);
    other_ = run_linfer(kArgs + " --model " + kOther.string(), "2>/dev/null");
    ASSERT_EQ(other_.status, 0);
    ASSERT_NE(demo_.out, other_.out) << "the two models must be told apart by their output";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A copy of the binary at dir_/rel.
  fs::path copy_binary(const fs::path& rel) {
    fs::create_directories((dir_ / rel).parent_path());
    fs::copy_file(LINFER_BIN, dir_ / rel);
    return dir_ / rel;
  }
  void place_other_model(const fs::path& rel) {
    fs::create_directories(dir_ / rel);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kOther / f, dir_ / rel / f);
  }

  fs::path dir_;
  CliRun demo_, other_;
};

TEST_F(DemoModelPath, CmakeInstallGivesAWorkingPrefix) {
  const fs::path build = fs::path(LINFER_BIN).parent_path();
  const CliRun install = run_shell("cmake --install " + build.string() + " --prefix " + dir_.string() + " 2>&1");
  ASSERT_EQ(install.status, 0) << install.out;
  const fs::path bin = dir_ / "bin/linfer";
  ASSERT_TRUE(fs::exists(bin)) << install.out;
  ASSERT_TRUE(fs::exists(dir_ / "share/linfer/demo/tokenizer.json")) << install.out;
  const CliRun r = generate(bin);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, demo_.out);
  // It read the installed copy, not the source tree: without the installed weights it fails.
  fs::remove(dir_ / "share/linfer/demo/model.safetensors");
  EXPECT_NE(generate(bin).status, 0);
}

TEST_F(DemoModelPath, CopiedBinaryPrefersAModelBesideIt) {
  const fs::path installed = copy_binary("prefix/bin/linfer");
  place_other_model("prefix/share/linfer/demo");
  EXPECT_EQ(generate(installed).out, other_.out);

  const fs::path shipped = copy_binary("bundle/linfer");
  place_other_model("bundle/models/demo");
  EXPECT_EQ(generate(shipped).out, other_.out);

  // Nothing beside it: the source tree it was built from.
  EXPECT_EQ(generate(copy_binary("alone/linfer")).out, demo_.out);
}

TEST_F(DemoModelPath, EnvironmentVariableComesFirstAndIsChecked) {
  const fs::path installed = copy_binary("prefix/bin/linfer");
  place_other_model("prefix/share/linfer/demo");
  EXPECT_EQ(generate(installed, "LINFER_DEMO_MODEL=" + (kSource / "models/demo").string()).out, demo_.out);
  EXPECT_EQ(generate(LINFER_BIN, "LINFER_DEMO_MODEL=" + kOther.string()).out, other_.out);

  const CliRun bad = run_shell("LINFER_DEMO_MODEL=" + (dir_ / "missing").string() + " " + LINFER_BIN + kArgs + " 2>&1");
  EXPECT_EQ(WEXITSTATUS(bad.status), 1) << bad.out;
  EXPECT_NE(bad.out.find("linfer: error: LINFER_DEMO_MODEL="), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("no config.json"), std::string::npos) << bad.out;
}

}  // namespace
