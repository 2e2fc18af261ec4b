#include "server/chat_prompt.h"

#include "server/api_error.h"

namespace linfer::server {

namespace {

// content: a string, null (an assistant turn with only tool calls), or a list of text parts.
Json normalise_content(const Json& content, size_t index) {
  if (content.is_string() || content.is_null()) return content;
  const std::string where = fmt::format("messages[{}].content", index);
  if (!content.is_array()) throw ApiError(400, fmt::format("'{}' must be a string or a list of parts", where), "messages");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const auto type = part.is_object() ? part.value("type", std::string()) : std::string();
    if (type != "text" || !part.contains("text") || !part["text"].is_string())
      throw ApiError(400, fmt::format("'{}[{}]': only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported",
                                      where, i), "messages");
    if (i > 0) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

std::unique_ptr<ChatPrompt> ChatPrompt::load(const std::string& model_dir) {
  try {  // one read of the folder's files (or the GGUF's metadata), not a check and then a load
    return std::make_unique<ChatPrompt>(ChatTemplate::load(model_dir));
  } catch (const NoChatTemplate&) {
    return nullptr;
  }
}

std::string ChatPrompt::render(const Json& body) const {
  const Fields f(body);
  const Json* messages = f.get("messages");
  if (!messages || !messages->is_array() || messages->empty())
    throw ApiError(400, "'messages' must be a non-empty array of messages", "messages");
  Json normal = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ApiError(400, fmt::format("messages[{}] must be an object with a string 'role'", i), "messages");
    Json copy = m;
    if (m.contains("content")) copy["content"] = normalise_content(m["content"], i);
    normal.push_back(std::move(copy));
  }
  const Json* tools = f.get("tools");
  if (tools && !tools->is_array()) throw ApiError(400, "'tools' must be an array", "tools");
  const Json* kwargs = f.get("chat_template_kwargs");
  if (kwargs && !kwargs->is_object()) throw ApiError(400, "'chat_template_kwargs' must be an object", "chat_template_kwargs");
  const bool add_generation_prompt = f.boolean("add_generation_prompt").value_or(true);
  try {
    return template_.render(prepare_openai_messages(std::move(normal)), tools ? *tools : Json(nullptr),
                            add_generation_prompt, kwargs ? *kwargs : Json(nullptr));
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {  // the template failed on this conversation (or raised): the client's to fix
    throw ApiError(400, fmt::format("the chat template failed on these messages: {}", e.what()), "messages");
  }
}

}  // namespace linfer::server
