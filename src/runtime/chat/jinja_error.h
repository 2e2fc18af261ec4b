#pragma once
// Errors of the chat-template engine. Every error a template causes (syntax, unknown filter, a type
// error while rendering, raise_exception) is a TemplateError that names the line and column of the
// template where it happened, so the author of a broken template can find it:
//
//   template line 12, column 8: 'dict object' has no attribute 'role' is undefined here
//
// Builtins (filters, tests, methods) throw Failure, which carries no position; the evaluator turns it
// into a TemplateError at the expression that called them.

#include <stdexcept>
#include <string>

#include "linfer/core/error.h"

namespace linfer::jinja {

class TemplateError : public Error {
 public:
  TemplateError(const std::string& reason, int line, int column);
  const std::string& reason() const { return reason_; }  // the message without the position
  int line() const { return line_; }                      // 1-based
  int column() const { return column_; }                  // 1-based, in bytes

 private:
  std::string reason_;
  int line_;
  int column_;
};

// raise_exception(message) was called by the template: the template refuses this input (for example
// "Conversation roles must alternate user/assistant"). reason() is the template author's message.
class TemplateRaised : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// Thrown by builtins; positioned by the evaluator.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by raise_exception(); positioned by the evaluator as a TemplateRaised.
class RaisedFailure : public Failure {
 public:
  using Failure::Failure;
};

}  // namespace linfer::jinja
