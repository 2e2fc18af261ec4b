#pragma once
// Checks linfer's template engine against Python Jinja2 (python3-jinja2, set up as transformers sets
// it up, by tools/jinja_render.py): every case is rendered by both, and the outcomes must agree —
// the same bytes, or both fail. One python3 run per call renders all the cases given.
//
//   expect_same_as_jinja2({
//       {"{{ x | upper }}", R"({"x": "a"})"},
//       {"{{ y.z }}", "{}", Outcome::Fails},   // also checks that Jinja2 does fail on it
//   });

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/chat/jinja.h"

namespace linfer::jinja::testing {

enum class Outcome { Renders, Fails };

struct Case {
  std::string source;
  std::string context = "{}";  // JSON object: the template's variables
  Outcome expected = Outcome::Renders;
  bool mutates = false;  // uses list.append etc.: the reference runs Jinja2's mutable sandbox
};

struct Reference {
  bool ok;
  std::string text;  // the rendering, or Jinja2's error
};

inline std::vector<Reference> render_with_jinja2(const std::vector<Case>& cases) {
  namespace fs = std::filesystem;
  static std::atomic<int> counter{0};
  const fs::path dir = fs::temp_directory_path() / ("linfer_jinja_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::create_directories(dir);
  nlohmann::ordered_json in = nlohmann::ordered_json::array();
  for (const Case& c : cases) {
    in.push_back({{"template", c.source}, {"context", nlohmann::ordered_json::parse(c.context)}, {"mutable", c.mutates}});
  }
  std::ofstream(dir / "cases.json") << in.dump();
  const std::string cmd = "python3 " + std::string(LINFER_SOURCE_DIR) + "/tools/jinja_render.py " +
                          (dir / "cases.json").string() + " " + (dir / "results.json").string() + " 2>&1";
  std::string log;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) log.append(buf, n);
    if (pclose(p) != 0) log += "\n(python3 failed)";
  }
  std::ifstream results(dir / "results.json");
  std::stringstream ss;
  ss << results.rdbuf();
  fs::remove_all(dir);
  if (ss.str().empty()) {
    ADD_FAILURE() << "the Jinja2 reference did not run (needs python3 and python3-jinja2: make deps):\n" << log;
    return {};
  }
  std::vector<Reference> out;
  for (const auto& r : nlohmann::json::parse(ss.str())) {
    out.push_back({r["ok"].get<bool>(), r.contains("text") ? r["text"].get<std::string>() : r["error"].get<std::string>()});
  }
  return out;
}

inline Reference render_with_linfer(const Case& c) {
  try {
    const Template t(c.source);
    return {true, t.render(from_json(nlohmann::ordered_json::parse(c.context)))};
  } catch (const TemplateError& e) {
    return {false, e.what()};
  }
}

inline void expect_same_as_jinja2(const std::vector<Case>& cases) {
  const std::vector<Reference> ref = render_with_jinja2(cases);
  if (ref.size() != cases.size()) return;  // already reported
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const Reference ours = render_with_linfer(c);
    SCOPED_TRACE("template: " + c.source + "\ncontext: " + c.context);
    EXPECT_EQ(ref[i].ok, c.expected == Outcome::Renders) << "Jinja2 itself: " << ref[i].text;
    EXPECT_EQ(ours.ok, ref[i].ok) << "linfer: " << ours.text << "\nJinja2: " << ref[i].text;
    if (ours.ok && ref[i].ok) {
      EXPECT_EQ(ours.text, ref[i].text);
    }
  }
}

}  // namespace linfer::jinja::testing
