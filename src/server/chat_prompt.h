#pragma once
// A chat request's prompt: its messages (and tools) rendered with the model folder's chat template
// (runtime/chat/chat_template.h), after the message shapes are checked and normalised as vLLM does:
// text-part lists become one string (parts joined by "\n"), tool-call arguments become objects.
//
//   auto chat = ChatPrompt::load(model_dir);     // nullptr: the model has no chat template
//   std::string text = chat->render(body);       // throws ApiError 400 on bad messages

#include <memory>
#include <string>

#include "runtime/chat/chat_template.h"
#include "server/json_fields.h"

namespace linfer::server {

class ChatPrompt {
 public:
  // nullptr when the folder has no template; throws linfer::Error when its template does not parse.
  static std::unique_ptr<ChatPrompt> load(const std::string& model_dir);
  explicit ChatPrompt(ChatTemplate t) : template_(std::move(t)) {}

  // Uses "messages", "tools", "add_generation_prompt" (default true), "chat_template_kwargs".
  std::string render(const Json& body) const;

 private:
  ChatTemplate template_;
};

}  // namespace linfer::server
