#include "runtime/chat/chat_template.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "io/gguf.h"

namespace linfer {

namespace fs = std::filesystem;

namespace {

constexpr const char* kJinjaFile = "chat_template.jinja";
constexpr const char* kNamedDir = "additional_chat_templates";
constexpr const char* kTokenizerConfig = "tokenizer_config.json";
constexpr const char* kSpecialTokensMap = "special_tokens_map.json";
constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token", "additional_special_tokens"};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("cannot read {}", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json(const fs::path& p) {
  if (!fs::exists(p)) return nullptr;
  try {
    return nlohmann::ordered_json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    fail("{} is not valid JSON: {}", p.string(), e.what());
  }
}

// A special token as tokenizer_config.json stores it: "text", {"content": "text", ...}, or null.
std::optional<std::string> token_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

jinja::Value special_tokens_value(const nlohmann::ordered_json& config, const nlohmann::ordered_json& fallback) {
  jinja::Value d = jinja::Value::dict();
  for (const char* key : kSpecialTokenKeys) {
    for (const auto* source : {&config, &fallback}) {
      if (!source->is_object() || !source->contains(key) || (*source)[key].is_null()) continue;
      const auto& v = (*source)[key];
      if (v.is_array()) {
        std::vector<jinja::Value> tokens;
        for (const auto& t : v) if (auto s = token_text(t)) tokens.emplace_back(*s);
        d.dict_obj().set(key, jinja::Value::list(std::move(tokens)));
      } else if (auto s = token_text(v)) {
        d.dict_obj().set(key, jinja::Value(*s));
      }
      break;
    }
  }
  return d;
}

// The templates as transformers finds them: {name -> source}, and the file they came from.
std::vector<std::pair<std::string, std::string>> find_templates(const fs::path& dir, const nlohmann::ordered_json& config,
                                                                std::string& origin) {
  std::vector<std::pair<std::string, std::string>> found;
  if (fs::exists(dir / kJinjaFile)) {
    found.emplace_back("default", read_file(dir / kJinjaFile));
    origin = (dir / kJinjaFile).string();
  }
  if (fs::is_directory(dir / kNamedDir)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir / kNamedDir)) {
      if (e.path().extension() == ".jinja") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) found.emplace_back(f.stem().string(), read_file(f));
    if (origin.empty() && !found.empty()) origin = (dir / kNamedDir).string();
  }
  if (!found.empty()) return found;  // template files replace the config's entry

  origin = (dir / kTokenizerConfig).string();
  if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) return found;
  const auto& t = config["chat_template"];
  if (t.is_string()) {
    found.emplace_back("default", t.get<std::string>());
  } else if (t.is_array()) {
    for (const auto& entry : t) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
          !entry["template"].is_string()) {
        fail("{}: each entry of \"chat_template\" must be {{\"name\": string, \"template\": string}}", origin);
      }
      found.emplace_back(entry["name"].get<std::string>(), entry["template"].get<std::string>());
    }
  } else {
    fail("{}: \"chat_template\" must be a string or a list of {{name, template}}", origin);
  }
  return found;
}

// A .gguf file's templates and special tokens, as llama.cpp's converter writes them: the tokenizer's
// template as tokenizer.chat_template, named ones as tokenizer.chat_template.<name>, and the special
// tokens as ids (tokenizer.ggml.<kind>_token_id) into tokenizer.ggml.tokens; returned in the shape of
// tokenizer_config.json ({"bos_token": "<s>", ...}).
std::vector<std::pair<std::string, std::string>> gguf_templates(const GgufHeader& h) {
  std::vector<std::pair<std::string, std::string>> found;
  if (auto t = h.opt_string("tokenizer.chat_template")) found.emplace_back("default", *t);
  const std::string prefix = "tokenizer.chat_template.";
  for (const auto& [key, value] : h.metadata)
    if (key.rfind(prefix, 0) == 0 && value.type == GgufType::String) found.emplace_back(key.substr(prefix.size()), value.str);
  return found;
}

nlohmann::ordered_json gguf_special_tokens(const GgufHeader& h) {
  constexpr std::pair<const char*, const char*> kIds[] = {
      {"bos_token", "bos"}, {"eos_token", "eos"}, {"unk_token", "unknown"}, {"sep_token", "seperator"},
      {"pad_token", "padding"}, {"cls_token", "cls"}, {"mask_token", "mask"}};  // "seperator": GGUF's spelling
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const GgufValue* tokens = h.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != GgufType::Array || tokens->elem != GgufType::String) return out;
  for (const auto& [name, kind] : kIds) {
    const auto id = h.opt_int(fmt::format("tokenizer.ggml.{}_token_id", kind));
    if (id && *id >= 0 && size_t(*id) < tokens->items.size()) out[name] = tokens->items[size_t(*id)].str;
  }
  return out;
}

}  // namespace

bool has_chat_template(const fs::path& model_dir) {
  if (is_gguf_file(model_dir.string())) return !gguf_templates(GgufFile(model_dir.string()).header()).empty();
  std::string origin;
  return !find_templates(model_dir, read_json(model_dir / kTokenizerConfig), origin).empty();
}

ChatTemplate ChatTemplate::load(const fs::path& model_dir) {
  ChatTemplate t;
  std::vector<std::pair<std::string, std::string>> sources;
  nlohmann::ordered_json config, fallback;
  if (is_gguf_file(model_dir.string())) {
    const GgufFile f(model_dir.string());
    sources = gguf_templates(f.header());
    config = gguf_special_tokens(f.header());
    t.origin_ = model_dir.string() + " (tokenizer.chat_template)";
    if (sources.empty())
      throw NoChatTemplate(fmt::format("{} has no chat template: no tokenizer.chat_template in its metadata",
                                       model_dir.string()));
  } else {
    config = read_json(model_dir / kTokenizerConfig);
    fallback = read_json(model_dir / kSpecialTokensMap);
    sources = find_templates(model_dir, config, t.origin_);
    if (sources.empty())
      throw NoChatTemplate(fmt::format("{} has no chat template: no {} and no \"chat_template\" in {}",
                                       model_dir.string(), kJinjaFile, kTokenizerConfig));
  }
  for (const auto& [name, source] : sources) {
    try {
      t.templates_.emplace_back(name, std::make_shared<const jinja::Template>(source));
    } catch (const jinja::TemplateError& e) {
      fail("chat template '{}' in {}: {}", name, t.origin_, e.what());
    }
  }
  t.special_tokens_ = special_tokens_value(config, fallback);
  return t;
}

ChatTemplate::ChatTemplate(const std::string& source, const nlohmann::ordered_json& special_tokens)
    : origin_("the given chat template"),
      templates_{{"default", std::make_shared<const jinja::Template>(source)}},
      special_tokens_(special_tokens_value(special_tokens, nullptr)) {}

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : templates_) out.push_back(name);
  return out;
}

const jinja::Template& ChatTemplate::select(bool has_tools) const {
  if (templates_.size() == 1 && templates_[0].first == "default") return *templates_[0].second;
  for (const char* wanted : {has_tools ? "tool_use" : "", "default"}) {
    for (const auto& [name, t] : templates_) if (name == wanted) return *t;
  }
  std::string names;
  for (const auto& [name, t] : templates_) names += (names.empty() ? "'" : ", '") + name + "'";
  fail("{} has several chat templates ({}) and none is named 'default'", origin_, names);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 bool add_generation_prompt, const nlohmann::ordered_json& kwargs) const {
  LINFER_CHECK(messages.is_array(), "messages must be an array, got {}", messages.type_name());
  LINFER_CHECK(tools.is_null() || tools.is_array(), "tools must be an array or null, got {}", tools.type_name());
  LINFER_CHECK(kwargs.is_null() || kwargs.is_object(), "chat_template_kwargs must be an object, got {}", kwargs.type_name());
  // transformers: render(messages=..., tools=..., documents=..., add_generation_prompt=...,
  //                      **special_tokens_map, **kwargs)
  jinja::Value vars = jinja::Value::dict();
  jinja::DictObj& d = vars.dict_obj();
  d.items = special_tokens_.dict_obj().items;
  d.set("messages", jinja::from_json(messages));
  d.set("tools", jinja::from_json(tools));
  d.set("documents", jinja::Value::none());
  d.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  if (kwargs.is_object()) {
    for (const auto& [key, value] : kwargs.items()) {
      LINFER_CHECK(key != "messages" && key != "tools" && key != "documents" && key != "add_generation_prompt",
                   "chat_template_kwargs may not set '{}': it is a request field of its own", key);
      d.set(key, jinja::from_json(value));
    }
  }
  return select(!tools.is_null()).render(vars);
}

nlohmann::ordered_json prepare_openai_messages(nlohmann::ordered_json messages) {
  if (!messages.is_array()) return messages;
  for (size_t i = 0; i < messages.size(); ++i) {
    auto& m = messages[i];
    if (!m.is_object() || m.value("role", "") != "assistant" || !m.contains("tool_calls") || !m["tool_calls"].is_array()) {
      continue;
    }
    auto& calls = m["tool_calls"];
    if (calls.empty()) {
      m.erase("tool_calls");
      continue;
    }
    for (size_t j = 0; j < calls.size(); ++j) {
      auto& call = calls[j];
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
      auto& fn = call["function"];
      const bool empty = !fn.contains("arguments") || fn["arguments"].is_null() ||
                         (fn["arguments"].is_string() && fn["arguments"].get_ref<const std::string&>().empty());
      if (empty) {
        fn["arguments"] = nlohmann::ordered_json::object();
      } else if (fn["arguments"].is_string()) {
        try {
          fn["arguments"] = nlohmann::ordered_json::parse(fn["arguments"].get_ref<const std::string&>());
        } catch (const nlohmann::json::exception&) {
          fail("messages[{}].tool_calls[{}].function.arguments is not valid JSON", i, j);
        }
      }
    }
  }
  return messages;
}

}  // namespace linfer
