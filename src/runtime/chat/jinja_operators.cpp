#include "runtime/chat/jinja_operators.h"

#include <cmath>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"

namespace linfer::jinja {

namespace {

const char* symbol(BinOp op) {
  switch (op) {
    case BinOp::Add: return "+";
    case BinOp::Sub: return "-";
    case BinOp::Mul: return "*";
    case BinOp::Div: return "/";
    case BinOp::FloorDiv: return "//";
    case BinOp::Mod: return "%";
    case BinOp::Pow: return "** or pow()";
  }
  return "?";
}

[[noreturn]] void unsupported(BinOp op, const Value& a, const Value& b) {
  if (op == BinOp::Add && (a.is_string() || a.is_list())) {
    throw Failure("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
  }
  throw Failure(std::string("unsupported operand type(s) for ") + symbol(op) + ": '" + type_name(a) + "' and '" +
                type_name(b) + "'");
}

// Python ints do not overflow; ours are 64-bit, so say so instead of wrapping.
template <class Op>
Value checked(Op op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op(x, y, &r)) throw Failure("integer overflow: the result does not fit in 64 bits");
  return Value(r);
}

// `'=' * 80` is common; a repeat into the hundreds of megabytes is a broken template
constexpr size_t kMaxRepeatBytes = size_t(64) << 20;
constexpr size_t kMaxRepeatItems = size_t(1) << 20;

Value repeat(const Value& seq, int64_t n) {
  n = std::max<int64_t>(n, 0);
  if (seq.is_string()) {
    if (n > 0 && seq.as_string().size() > kMaxRepeatBytes / size_t(n)) throw Failure("repeated string longer than 64 MiB");
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value(std::move(out));
  }
  const auto& items = seq.list_obj().items;
  if (n > 0 && items.size() > kMaxRepeatItems / size_t(n)) throw Failure("repeated list longer than 2^20 items");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.list_obj().tuple);
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) return Value(std::pow(double(base), double(exp)));
  int64_t r = 1;
  for (int64_t i = 0; i < exp; ++i) {
    if (__builtin_mul_overflow(r, base, &r)) throw Failure("integer overflow: the result does not fit in 64 bits");
    if (r == 0 || r == 1) break;
  }
  return Value(r);
}

}  // namespace

Value binary_op(BinOp op, const Value& a, const Value& b) {
  for (const Value* v : {&a, &b}) if (v->is_undefined()) throw Failure(v->undefined_hint());
  if (a.is_number() && b.is_number()) {
    const bool floating = a.is_float() || b.is_float();
    if (!floating) {
      const int64_t x = a.to_int(), y = b.to_int();
      switch (op) {
        case BinOp::Add: return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_add_overflow(p, q, r); }, x, y);
        case BinOp::Sub: return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_sub_overflow(p, q, r); }, x, y);
        case BinOp::Mul: return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_mul_overflow(p, q, r); }, x, y);
        case BinOp::Div:
          if (y == 0) throw Failure("division by zero");
          return Value(double(x) / double(y));
        case BinOp::FloorDiv: case BinOp::Mod: {
          if (y == 0) throw Failure("integer division or modulo by zero");
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) { --q; m += y; }  // Python floors toward -inf
          return Value(op == BinOp::FloorDiv ? q : m);
        }
        case BinOp::Pow: return int_pow(x, y);
      }
    }
    const double x = a.to_double(), y = b.to_double();
    switch (op) {
      case BinOp::Add: return Value(x + y);
      case BinOp::Sub: return Value(x - y);
      case BinOp::Mul: return Value(x * y);
      case BinOp::Div:
        if (y == 0) throw Failure("float division by zero");
        return Value(x / y);
      case BinOp::FloorDiv: case BinOp::Mod: {  // CPython's float divmod
        if (y == 0) throw Failure(op == BinOp::Mod ? "float modulo" : "float floor division by zero");
        double mod = std::fmod(x, y);
        double div = (x - mod) / y;
        if (mod != 0) {
          if ((y < 0) != (mod < 0)) { mod += y; div -= 1.0; }
        } else {
          mod = std::copysign(0.0, y);
        }
        if (op == BinOp::Mod) return Value(mod);
        if (div == 0) return Value(std::copysign(0.0, x / y));
        double floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
        return Value(floordiv);
      }
      case BinOp::Pow: return Value(std::pow(x, y));
    }
  }
  if (op == BinOp::Add && a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
  if (op == BinOp::Add && a.is_list() && b.is_list() && a.list_obj().tuple == b.list_obj().tuple) {
    std::vector<Value> out = a.list_obj().items;
    out.insert(out.end(), b.list_obj().items.begin(), b.list_obj().items.end());
    return Value::list(std::move(out), a.list_obj().tuple);
  }
  if (op == BinOp::Mul && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.to_int());
  if (op == BinOp::Mul && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.to_int());
  if (op == BinOp::Mod && a.is_string()) return Value(printf_format(a.as_string(), b));
  unsupported(op, a, b);
}

Value negate(const Value& v) {
  if (v.is_undefined()) throw Failure(v.undefined_hint());
  if (v.is_float()) return Value(-v.as_float());
  if (v.is_int() || v.is_bool()) {
    return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_sub_overflow(p, q, r); }, 0, v.to_int());
  }
  throw Failure("bad operand type for unary -: '" + type_name(v) + "'");
}

Value unary_plus(const Value& v) {
  if (v.is_undefined()) throw Failure(v.undefined_hint());
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.to_int());
  throw Failure("bad operand type for unary +: '" + type_name(v) + "'");
}

}  // namespace linfer::jinja
