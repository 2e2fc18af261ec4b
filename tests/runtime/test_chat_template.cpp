// Chat templates of model folders and GGUF files: where the template comes from (transformers' rules), the
// variables it sees, and realistic tool-calling templates (Qwen-, Kimi-, Llama-, Mistral- and
// DeepSeek-like, written for these tests) on multi-turn conversations, checked against Python Jinja2.

#include "runtime/chat/chat_template.h"

#include <filesystem>
#include <fstream>

#include "../gguf_writer.h"
#include "jinja_reference.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using linfer::ChatTemplate;

namespace {

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::temp_directory_path() / ("linfer_chat_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }
  std::string render(const ordered_json& tools = nullptr) {
    return ChatTemplate::load(dir_).render(ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), tools, false);
  }
  fs::path dir_;
};

TEST_F(ModelDir, TemplateStringInTokenizerConfig) {
  write("tokenizer_config.json", R"({"chat_template": "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"})");
  EXPECT_TRUE(linfer::has_chat_template(dir_));
  EXPECT_EQ(render(), "[user:hi]");
}

TEST_F(ModelDir, ListOfNamedTemplatesUsesToolUseWhenToolsAreGiven) {
  write("tokenizer_config.json", R"({"chat_template": [
      {"name": "default", "template": "plain"}, {"name": "tool_use", "template": "tools:{{ tools | length }}"},
      {"name": "rag", "template": "rag"}]})");
  EXPECT_EQ(ChatTemplate::load(dir_).names(), (std::vector<std::string>{"default", "tool_use", "rag"}));
  EXPECT_EQ(render(), "plain");
  EXPECT_EQ(render(ordered_json::parse(R"([{"type": "function"}])")), "tools:1");
}

TEST_F(ModelDir, NamedTemplatesWithoutDefaultFailWhenRendered) {
  write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "rag"}]})");
  try {
    render();
    FAIL() << "expected an error";
  } catch (const linfer::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'rag'"), std::string::npos) << e.what();
  }
}

TEST_F(ModelDir, JinjaFileWinsOverTokenizerConfig) {
  write("tokenizer_config.json", R"({"chat_template": "from config", "eos_token": "</s>"})");
  write("chat_template.jinja", "from file {{ eos_token }}\n");
  EXPECT_EQ(render(), "from file </s>");  // and Jinja drops the file's trailing newline
}

TEST_F(ModelDir, AdditionalTemplatesDirectory) {
  write("chat_template.jinja", "default one");
  write("additional_chat_templates/tool_use.jinja", "tool one");
  EXPECT_EQ(render(), "default one");
  EXPECT_EQ(render(ordered_json::array()), "tool one");
}

TEST_F(ModelDir, MissingTemplateIsItsOwnError) {
  EXPECT_FALSE(linfer::has_chat_template(dir_));  // no tokenizer_config.json at all
  EXPECT_THROW(ChatTemplate::load(dir_), linfer::NoChatTemplate);
  write("tokenizer_config.json", R"({"eos_token": "</s>", "chat_template": null})");
  EXPECT_FALSE(linfer::has_chat_template(dir_));
  try {
    ChatTemplate::load(dir_);
    FAIL() << "expected NoChatTemplate";
  } catch (const linfer::NoChatTemplate& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
  }
}

TEST_F(ModelDir, SpecialTokensAsStringsObjectsOrFromTheSpecialTokensMap) {
  write("tokenizer_config.json", R"({
      "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
      "pad_token": "<pad>", "unk_token": null,
      "additional_special_tokens": ["<a>", {"content": "<b>"}],
      "chat_template": "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token is defined }}|{{ additional_special_tokens }}"})");
  write("special_tokens_map.json", R"({"eos_token": {"content": "</s>"}, "pad_token": "<ignored>"})");
  EXPECT_EQ(render(), "<s>|</s>|<pad>|False|['<a>', '<b>']");
}

TEST_F(ModelDir, BrokenTemplateNamesTheFileAndPosition) {
  write("chat_template.jinja", "line one\n{% for m in messages %}\n{{ m.content | nosuchfilter }}\n{% endfor %}");
  try {
    ChatTemplate::load(dir_);
    FAIL() << "expected an error";
  } catch (const linfer::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("chat_template.jinja"), std::string::npos) << what;
    EXPECT_NE(what.find("line 3, column 16"), std::string::npos) << what;
    EXPECT_NE(what.find("nosuchfilter"), std::string::npos) << what;
  }
}

// A .gguf file (llama.cpp's converter output) in place of the folder: the template and named ones from
// its metadata, the special tokens' texts from their ids.
TEST_F(ModelDir, GgufMetadataTemplateAndSpecialTokens) {
  linfer::test::GgufWriter w;
  w.kv_string("general.architecture", "test");
  w.kv_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hello"});
  w.kv_u32("tokenizer.ggml.bos_token_id", 1);
  w.kv_u32("tokenizer.ggml.eos_token_id", 2);
  w.kv_u32("tokenizer.ggml.padding_token_id", 99);  // out of range: no pad_token
  w.kv_string("tokenizer.chat_template",
              "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ eos_token }}"
              "|{{ pad_token is defined }}");
  w.kv_string("tokenizer.chat_template.tool_use", "tools:{{ tools | length }}");
  const fs::path file = dir_ / "model.gguf";
  std::ofstream(file, std::ios::binary) << w.build();
  EXPECT_TRUE(linfer::has_chat_template(file));
  const ChatTemplate t = ChatTemplate::load(file);
  EXPECT_EQ(t.names(), (std::vector<std::string>{"default", "tool_use"}));
  const auto messages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(t.render(messages, nullptr, false), "<s>[user:hi]</s>|False");
  EXPECT_EQ(t.render(messages, ordered_json::parse(R"([{"type": "function"}])"), false), "tools:1");

  linfer::test::GgufWriter none;  // no template: its own error, naming the key
  none.kv_string("general.architecture", "test");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << none.build();
  EXPECT_FALSE(linfer::has_chat_template(file));
  try {
    ChatTemplate::load(file);
    FAIL() << "expected NoChatTemplate";
  } catch (const linfer::NoChatTemplate& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.chat_template"), std::string::npos) << e.what();
  }
}

TEST_F(ModelDir, MalformedConfigIsAnError) {
  write("tokenizer_config.json", R"({"chat_template": 42})");
  EXPECT_THROW(ChatTemplate::load(dir_), linfer::Error);
  write("tokenizer_config.json", "{not json");
  EXPECT_THROW(ChatTemplate::load(dir_), linfer::Error);
}

TEST(ChatTemplateRender, VariablesKwargsAndBadArguments) {
  const ChatTemplate t("{{ messages | length }} {{ tools }} {{ documents }} {{ add_generation_prompt }} "
                       "{{ enable_thinking }} {{ eos_token }}",
                       ordered_json::parse(R"({"eos_token": "<|end|>"})"));
  const auto messages = ordered_json::parse(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(t.render(messages, nullptr, true, ordered_json::parse(R"({"enable_thinking": false})")),
            "1 None None True False <|end|>");
  EXPECT_THROW(t.render(messages, nullptr, true, ordered_json::parse(R"({"messages": []})")), linfer::Error);
  EXPECT_THROW(t.render(ordered_json::object(), nullptr, true), linfer::Error);
  EXPECT_THROW(t.render(messages, ordered_json::object(), true), linfer::Error);
  EXPECT_THROW(t.render(messages, nullptr, true, ordered_json::array()), linfer::Error);
}

TEST(ChatTemplateRender, RaiseExceptionIsATemplateRaisedWithTheMessage) {
  const ChatTemplate t("{% if messages[0].role != 'user' %}{{ raise_exception('first turn must be the user') }}{% endif %}ok");
  EXPECT_EQ(t.render(ordered_json::parse(R"([{"role": "user"}])"), nullptr, false), "ok");
  try {
    t.render(ordered_json::parse(R"([{"role": "assistant"}])"), nullptr, false);
    FAIL() << "expected TemplateRaised";
  } catch (const linfer::jinja::TemplateRaised& e) {
    EXPECT_EQ(e.reason(), "first turn must be the user");
    EXPECT_EQ(e.line(), 1);
    EXPECT_EQ(e.column(), 39);  // where raise_exception starts
  }
}

TEST(ChatTemplateRender, PrepareOpenAIMessagesParsesToolCallArguments) {
  const auto in = ordered_json::parse(R"([
      {"role": "user", "content": "x"},
      {"role": "assistant", "content": null, "tool_calls": [
         {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{\"b\": 2, \"a\": [1, \"é\"]}"}},
         {"id": "2", "type": "function", "function": {"name": "g", "arguments": ""}},
         {"id": "3", "type": "function", "function": {"name": "h"}},
         {"id": "4", "type": "function", "function": {"name": "k", "arguments": {"already": "parsed"}}}]},
      {"role": "assistant", "content": "no calls", "tool_calls": []},
      {"role": "tool", "tool_call_id": "1", "content": "{\"left\": \"as a string\"}"}])");
  const ordered_json out = linfer::prepare_openai_messages(in);
  const auto& calls = out[1]["tool_calls"];
  EXPECT_EQ(calls[0]["function"]["arguments"].dump(), R"({"b":2,"a":[1,"é"]})");  // key order kept
  EXPECT_EQ(calls[1]["function"]["arguments"], ordered_json::object());
  EXPECT_EQ(calls[2]["function"]["arguments"], ordered_json::object());
  EXPECT_EQ(calls[3]["function"]["arguments"], ordered_json::parse(R"({"already": "parsed"})"));
  EXPECT_FALSE(out[2].contains("tool_calls"));
  EXPECT_TRUE(out[3]["content"].is_string());
  auto bad = in;
  bad[1]["tool_calls"][0]["function"]["arguments"] = "{not json";
  EXPECT_THROW(linfer::prepare_openai_messages(bad), linfer::Error);
}

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every conversation, with and without tools, with and without the generation prompt, and with
// kwargs a server passes through: ChatTemplate::render must give Jinja2's bytes.
void expect_template_matches_jinja2(const std::string& file, bool mutates) {
  const fs::path dir = fs::path(LINFER_SOURCE_DIR) / "tests/runtime/chat_templates";
  const std::string source = read(dir / file);
  const ordered_json data = ordered_json::parse(read(dir / "conversations.json"));
  const ordered_json special = ordered_json::parse(R"({"bos_token": "<|bos|>", "eos_token": "<|eos|>"})");
  const ChatTemplate tmpl(source, special);

  struct Render { std::string name; ordered_json messages, tools; bool generation; ordered_json kwargs; };
  std::vector<Render> renders;
  for (const auto& [name, conversation] : data["conversations"].items()) {
    const ordered_json messages = linfer::prepare_openai_messages(conversation);
    for (bool with_tools : {false, true}) {
      for (bool generation : {false, true}) {
        renders.push_back({name, messages, with_tools ? data["tools"] : ordered_json(nullptr), generation, nullptr});
      }
    }
    renders.push_back({name + " +kwargs", messages, data["tools"], true,
                       ordered_json::parse(R"({"enable_thinking": false, "date_string": "01 Jan 2026",
                                               "builtin_tools": ["search", "code_interpreter"], "tools_in_user_message": false})")});
  }
  std::vector<linfer::jinja::testing::Case> cases;
  for (const Render& r : renders) {
    ordered_json context = special;  // the variables transformers passes
    context["messages"] = r.messages;
    context["tools"] = r.tools;
    context["documents"] = nullptr;
    context["add_generation_prompt"] = r.generation;
    if (r.kwargs.is_object()) context.update(r.kwargs);
    cases.push_back({source, context.dump(), linfer::jinja::testing::Outcome::Renders, mutates});
  }
  const auto reference = linfer::jinja::testing::render_with_jinja2(cases);
  ASSERT_EQ(reference.size(), renders.size());
  size_t rendered = 0;
  for (size_t i = 0; i < renders.size(); ++i) {
    const Render& r = renders[i];
    SCOPED_TRACE(file + ", conversation '" + r.name + "', tools " + (r.tools.is_null() ? "no" : "yes") +
                 ", add_generation_prompt " + (r.generation ? "yes" : "no"));
    std::string ours;
    bool ok = true;
    try {
      ours = tmpl.render(r.messages, r.tools, r.generation, r.kwargs);
    } catch (const linfer::jinja::TemplateError& e) {
      ok = false;
      ours = e.what();
    }
    EXPECT_EQ(ok, reference[i].ok) << "linfer: " << ours << "\nJinja2: " << reference[i].text;
    if (ok && reference[i].ok) {
      EXPECT_EQ(ours, reference[i].text);
      ++rendered;
    }
  }
  // the comparison must mostly be of renderings, not of two failures
  EXPECT_GE(rendered * 4, renders.size() * 3) << rendered << " of " << renders.size() << " rendered";
}

TEST(ChatTemplateRealistic, QwenLike) { expect_template_matches_jinja2("qwen_like.jinja", false); }
TEST(ChatTemplateRealistic, KimiLike) { expect_template_matches_jinja2("kimi_like.jinja", true); }
TEST(ChatTemplateRealistic, LlamaLike) { expect_template_matches_jinja2("llama_like.jinja", false); }
TEST(ChatTemplateRealistic, MistralLike) { expect_template_matches_jinja2("mistral_like.jinja", false); }
TEST(ChatTemplateRealistic, DeepSeekLike) { expect_template_matches_jinja2("deepseek_like.jinja", false); }

}  // namespace
