// libFuzzer target: the chat-template engine. Any input must parse and render, or throw
// jinja::TemplateError; a crash, a sanitizer report or any other exception is a bug. Inputs with
// loops or macros are only parsed: a template is trusted model data, and `for` / recursion can
// legitimately run for longer than a fuzzer waits.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/chat/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace linfer::jinja;
  static const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(R"({
      "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "é"}]},
                   {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                   {"role": "tool", "content": "r"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
      "add_generation_prompt": true, "bos_token": "<s>"})");
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const Template t(source);
    if (source.find("for") == std::string::npos && source.find("macro") == std::string::npos &&
        source.find("call") == std::string::npos) {
      t.render(from_json(vars));  // fresh values: a template may append to the lists it is given
    }
  } catch (const TemplateError&) {
  }
  return 0;
}
