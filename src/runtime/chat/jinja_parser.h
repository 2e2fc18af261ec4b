#pragma once
// Template source -> statements, following Jinja2's grammar for the subset chat templates use:
// {{ }}, {% if / elif / else %}, {% for ... in ... if ... %} with else, {% set %} (also ns.attr and
// block form), {% macro %}, {% call %}, {% filter %}, {% with %}, {% break %} / {% continue %},
// {% generation %} (transformers' marker; renders its body), and Jinja's expression language.

#include <string_view>

#include "runtime/chat/jinja_ast.h"

namespace linfer::jinja {

Body parse(std::string_view source);  // throws TemplateError with the line and column

}  // namespace linfer::jinja
