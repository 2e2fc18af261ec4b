#include "runtime/chat/jinja_error.h"

#include <fmt/format.h>

namespace linfer::jinja {

TemplateError::TemplateError(const std::string& reason, int line, int column)
    : Error(fmt::format("template line {}, column {}: {}", line, column, reason)),
      reason_(reason), line_(line), column_(column) {}

}  // namespace linfer::jinja
