#pragma once
// A model's chat template: turns an OpenAI-style conversation into the prompt text the model was
// trained on, exactly as transformers' apply_chat_template (and vLLM, which calls it) would.
//
//   if (!has_chat_template(dir)) -> answer /v1/chat/completions with 400
//   ChatTemplate t = ChatTemplate::load(dir);            // parses now: a broken template fails here
//   auto messages = prepare_openai_messages(body["messages"]);
//   std::string prompt = t.render(messages, body.value("tools", nullptr), true,
//                                 body.value("chat_template_kwargs", nullptr));
//
// Where the template comes from (transformers' rule): `chat_template.jinja` in the folder (plus
// named ones in `additional_chat_templates/*.jinja`) replaces any "chat_template" in
// tokenizer_config.json; otherwise tokenizer_config.json's "chat_template" is a string or a list of
// {"name", "template"}. With several templates, "tool_use" is used when tools are given and it
// exists, else "default". bos_token / eos_token / pad_token / ... come from tokenizer_config.json
// (strings or {"content": ...} objects), falling back to special_tokens_map.json. `model_dir` may
// also be a .gguf file: its tokenizer.chat_template (and tokenizer.chat_template.<name>) metadata, the
// special tokens' texts from their tokenizer.ggml.*_token_id.
//
// Pass JSON parsed as nlohmann::ordered_json: dicts keep the client's key order, which `tojson`
// writes into the prompt (a sorted nlohmann::json converts implicitly but loses that order).
//
// Errors: load() throws NoChatTemplate when the folder has none, linfer::Error for unreadable files
// or a template that does not parse. render() throws jinja::TemplateError (the template failed on
// this input: a client error, 400) and jinja::TemplateRaised (the template called raise_exception,
// e.g. "roles must alternate"; also a TemplateError), linfer::Error for malformed arguments.
//
// Thread-safety: a loaded ChatTemplate is immutable; render() may run on many threads at once.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "linfer/core/error.h"
#include "runtime/chat/jinja.h"

namespace linfer {

// The model folder has no chat template.
class NoChatTemplate : public Error {
 public:
  using Error::Error;
};

bool has_chat_template(const std::filesystem::path& model_dir);

class ChatTemplate {
 public:
  static ChatTemplate load(const std::filesystem::path& model_dir);

  // One template; special_tokens: {"bos_token": "<s>", ...} (values as in tokenizer_config.json).
  explicit ChatTemplate(const std::string& source, const nlohmann::ordered_json& special_tokens = nullptr);

  // messages: array of message objects, passed as given (string or list-of-parts content,
  // tool_calls, tool messages with tool_call_id). tools: null or an array. kwargs: null or an object
  // of extra top-level variables (vLLM's chat_template_kwargs, e.g. {"enable_thinking": false}).
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt, const nlohmann::ordered_json& kwargs = nullptr) const;

  std::vector<std::string> names() const;  // "default", "tool_use", ...

 private:
  ChatTemplate() = default;
  const jinja::Template& select(bool has_tools) const;

  std::string origin_;  // for messages: the file the template came from
  std::vector<std::pair<std::string, std::shared_ptr<const jinja::Template>>> templates_;
  jinja::Value special_tokens_;  // dict: name -> token text
};

// What vLLM does to OpenAI messages before the template sees them: in assistant messages, an empty
// tool_calls list is removed and each function.arguments JSON string is parsed into an object
// (templates write it with tojson or iterate it); missing or empty arguments become {}.
// Throws linfer::Error when arguments are not valid JSON.
nlohmann::ordered_json prepare_openai_messages(nlohmann::ordered_json messages);

}  // namespace linfer
