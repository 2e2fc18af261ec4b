#pragma once
// A Jinja2 template interpreter for the subset chat templates use, rendering as transformers'
// apply_chat_template does (ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the
// loopcontrols extension, its own tojson, raise_exception and strftime_now).
//
//   jinja::Template t("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}");
//   jinja::Value vars = jinja::from_json(nlohmann::ordered_json::parse(R"({"messages": [...]})"));
//   std::string prompt = t.render(vars);
//
// Errors (syntax, unknown filters, type errors, undefined variables used where Jinja2 fails,
// raise_exception) throw TemplateError / TemplateRaised with the template line and column.
// Differences from Jinja2 are listed in docs/chat-templates.md.
//
// Thread-safety: a Template is immutable after construction; render() may run on many threads.
// Stack: parsing and rendering recurse; the nesting limits keep them within 512 KiB.

#include <memory>
#include <string>
#include <string_view>

#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_value.h"

namespace linfer::jinja {

struct Stmt;

class Template {
 public:
  explicit Template(std::string_view source);  // parses; throws TemplateError
  // variables: a dict whose keys become the template's top-level names
  std::string render(const Value& variables) const;

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
};

}  // namespace linfer::jinja
