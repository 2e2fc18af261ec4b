#pragma once
// Python's arithmetic on template values: `+` adds numbers and concatenates str / list, `/` is true
// division, `//` and `%` floor, `*` repeats str / list, `**` powers, unary minus. Type errors and
// division by zero throw Failure with Python's message.

#include "runtime/chat/jinja_ast.h"
#include "runtime/chat/jinja_value.h"

namespace linfer::jinja {

Value binary_op(BinOp op, const Value& a, const Value& b);
Value negate(const Value& v);
Value unary_plus(const Value& v);

}  // namespace linfer::jinja
