// The interpreter: walks the parsed statements with Jinja2's scoping rules.
// - The template's top level is one scope; `if` and `set` use the scope they are in.
// - Every iteration of a `for` loop gets a fresh scope (so `set` inside a loop is not seen after
//   it, nor by the next iteration: that is what namespace() is for).
// - A macro call gets a scope whose parent is the scope the macro was defined in, looked up when
//   the macro runs (a macro sees later changes to the variables around it, as in Jinja2).
// Names not found in any scope come from the render variables, then from the globals.

#include <algorithm>
#include <unordered_map>

#include "runtime/chat/jinja.h"
#include "runtime/chat/jinja_ast.h"
#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_operators.h"
#include "runtime/chat/jinja_parser.h"

namespace linfer::jinja {

namespace {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;

  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

constexpr int kMaxCallDepth = 200;  // Jinja2 hits Python's recursion limit between 150 and 200 nested macro calls

class Evaluator {
 public:
  Evaluator(const Value& variables, const Value& globals) : variables_(variables), globals_(globals) {}

  std::string run(const Body& body) {
    root_ = std::make_shared<Scope>(nullptr);
    std::string out;
    exec(body, root_, out);
    return out;
  }

 private:
  const Value& variables_;
  const Value& globals_;
  ScopePtr root_;
  const Value* block_input_ = nullptr;  // the rendered body inside {% filter %} / {% set x | f %}
  int call_depth_ = 0;

  // ---- statements -------------------------------------------------------------------------------

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& s : body) {
      const Flow f = exec(*s, scope, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::Text: out += static_cast<const TextStmt&>(s).text; return Flow::Normal;
      case StmtKind::Output: out += to_str(eval(*static_cast<const OutputStmt&>(s).expr, scope)); return Flow::Normal;
      case StmtKind::If: {
        const auto& n = static_cast<const IfStmt&>(s);
        for (const auto& [test, body] : n.branches) {
          if (truthy(eval(*test, scope))) return exec(body, scope, out);
        }
        return exec(n.otherwise, scope, out);
      }
      case StmtKind::For: return exec_for(static_cast<const ForStmt&>(s), scope, out);
      case StmtKind::Set: {
        const auto& n = static_cast<const SetStmt&>(s);
        assign(n.target, eval(*n.value, scope), *scope, s);
        return Flow::Normal;
      }
      case StmtKind::SetBlock: {
        const auto& n = static_cast<const SetBlockStmt&>(s);
        std::string body;
        exec(n.body, std::make_shared<Scope>(scope), body);
        assign(n.target, n.filter ? filtered(*n.filter, Value(std::move(body)), scope) : Value(std::move(body)), *scope, s);
        return Flow::Normal;
      }
      case StmtKind::Macro: {
        const auto& n = static_cast<const MacroStmt&>(s);
        scope->vars[n.name] = make_macro(n.name, n.params, n.body, scope);
        return Flow::Normal;
      }
      case StmtKind::CallBlock: {
        const auto& n = static_cast<const CallBlockStmt&>(s);
        const Value caller = make_macro("caller", n.params, n.body, scope);
        out += to_str(call(*n.call, scope, &caller));
        return Flow::Normal;
      }
      case StmtKind::FilterBlock: {
        const auto& n = static_cast<const FilterBlockStmt&>(s);
        std::string body;
        const Flow f = exec(n.body, scope, body);
        out += to_str(filtered(*n.filter, Value(std::move(body)), scope));
        return f;
      }
      case StmtKind::With: {
        const auto& n = static_cast<const WithStmt&>(s);
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [target, value] : n.assignments) assign(target, eval(*value, scope), *inner, s);
        return exec(n.body, inner, out);
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  [[noreturn]] static void fail_at(const Node& n, const std::string& why) { throw TemplateError(why, n.line, n.column); }

  void assign(const Target& t, Value value, Scope& scope, const Node& where) {
    if (!t.attribute.empty()) {
      const Value ns = lookup(t.names[0], scope);
      if (!ns.is_dict() || !ns.dict_obj().is_namespace) fail_at(where, "cannot assign attribute on non-namespace object");
      ns.dict_obj().set(t.attribute, std::move(value));
      return;
    }
    if (!t.unpack) {
      scope.vars[t.names[0]] = std::move(value);
      return;
    }
    std::vector<Value> items;
    try {
      items = iterate(value);
    } catch (const Failure&) {
      fail_at(where, "cannot unpack non-iterable " + type_name(value) + " object");
    }
    if (items.size() != t.names.size()) {
      fail_at(where, items.size() > t.names.size()
                         ? fmt::format("too many values to unpack (expected {})", t.names.size())
                         : fmt::format("not enough values to unpack (expected {}, got {})", t.names.size(), items.size()));
    }
    for (size_t i = 0; i < items.size(); ++i) scope.vars[t.names[i]] = std::move(items[i]);
  }

  Flow exec_for(const ForStmt& n, const ScopePtr& scope, std::string& out) {
    std::vector<Value> items;
    const Value iterable = eval(*n.iterable, scope);
    try {
      items = iterate(iterable);
    } catch (const Failure& f) {
      fail_at(*n.iterable, f.what());
    }
    if (n.filter) {  // `for x in xs if cond`: loop.length and loop.last count only the kept items
      std::vector<Value> kept;
      for (Value& item : items) {
        auto probe = std::make_shared<Scope>(scope);
        assign(n.target, item, *probe, n);
        if (truthy(eval(*n.filter, probe))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const int64_t length = int64_t(items.size());
    for (int64_t i = 0; i < length; ++i) {
      auto inner = std::make_shared<Scope>(scope);
      assign(n.target, items[size_t(i)], *inner, n);
      inner->vars["loop"] = loop_object(items, i);
      const Flow f = exec(n.body, inner, out);
      if (f == Flow::Break) break;
    }
    if (length == 0) return exec(n.otherwise, std::make_shared<Scope>(scope), out);
    return Flow::Normal;
  }

  static Value loop_object(const std::vector<Value>& items, int64_t i) {
    const int64_t n = int64_t(items.size());
    Value loop = Value::dict();
    DictObj& d = loop.dict_obj();
    d.items.reserve(12);
    d.set("index", Value(i + 1));
    d.set("index0", Value(i));
    d.set("revindex", Value(n - i));
    d.set("revindex0", Value(n - i - 1));
    d.set("first", Value(i == 0));
    d.set("last", Value(i == n - 1));
    d.set("length", Value(n));
    d.set("depth", Value(int64_t(1)));
    d.set("depth0", Value(int64_t(0)));
    d.set("previtem", i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item"));
    d.set("nextitem", i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item"));
    d.set("cycle", Value::function("loop.cycle", [i](CallArgs& a) {
      if (a.positional.empty()) throw Failure("no items for cycling given");
      return a.positional[size_t(i) % a.positional.size()];
    }));
    return loop;
  }

  // ---- macros -----------------------------------------------------------------------------------

  Value make_macro(const std::string& name, const std::vector<Param>& params, const Body& body, const ScopePtr& scope) {
    std::weak_ptr<Scope> home = scope;  // weak: the scope holds the macro; a strong ref would leak the cycle
    return Value::function("macro '" + name + "'", [this, name, &params, &body, home](CallArgs& args) {
      if (call_depth_ >= kMaxCallDepth) throw Failure("maximum recursion depth exceeded in macro '" + name + "'");
      ScopePtr parent = home.lock();
      auto scope = std::make_shared<Scope>(parent ? parent : root_);
      std::vector<Value> varargs;
      for (size_t i = 0; i < args.positional.size(); ++i) {
        if (i < params.size()) scope->vars[params[i].name] = args.positional[i];
        else varargs.push_back(args.positional[i]);
      }
      Value kwargs = Value::dict();
      for (auto& [key, value] : args.keyword) {
        bool is_param = false;
        for (const Param& p : params) is_param = is_param || p.name == key;
        if (is_param && scope->vars.count(key)) throw Failure("macro '" + name + "' got multiple values for argument '" + key + "'");
        if (is_param || key == "caller") scope->vars[key] = value;
        else kwargs.dict_obj().set(key, value);
      }
      for (const Param& p : params) {
        if (scope->vars.count(p.name)) continue;
        scope->vars[p.name] = p.fallback ? eval(*p.fallback, scope)
                                         : Value::undefined("parameter '" + p.name + "' was not provided");
      }
      scope->vars["varargs"] = Value::list(std::move(varargs), true);
      scope->vars["kwargs"] = std::move(kwargs);
      std::string out;
      ++call_depth_;
      try {
        exec(body, scope, out);
      } catch (...) {
        --call_depth_;
        throw;
      }
      --call_depth_;
      return Value(std::move(out));
    });
  }

  // ---- expressions ------------------------------------------------------------------------------

  Value lookup(const std::string& name, const Scope& scope) const {
    if (const Value* v = scope.find(name)) return *v;
    if (const Value* v = variables_.dict_obj().find(name)) return *v;
    if (const Value* v = globals_.dict_obj().find(name)) return *v;
    return Value::undefined("'" + name + "' is undefined");
  }

  // Evaluates e; a Failure thrown by a builtin becomes a TemplateError at e.
  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      return eval_node(e, scope);
    } catch (const TemplateError&) {
      throw;
    } catch (const RaisedFailure& f) {
      throw TemplateRaised(f.what(), e.line, e.column);
    } catch (const std::exception& f) {
      throw TemplateError(f.what(), e.line, e.column);
    }
  }

  CallArgs eval_args(const Args& a, const ScopePtr& scope) {
    CallArgs out;
    out.positional.reserve(a.positional.size());
    for (const ExprPtr& p : a.positional) out.positional.push_back(eval(*p, scope));
    for (const auto& [k, v] : a.keyword) out.keyword.emplace_back(k, eval(*v, scope));
    return out;
  }

  Value call(const CallExpr& c, const ScopePtr& scope, const Value* caller) {
    const Value callee = eval(*c.callee, scope);
    if (callee.is_undefined()) fail_at(c, callee.undefined_hint());
    if (!callee.is_function()) fail_at(c, "'" + type_name(callee) + "' object is not callable");
    CallArgs args = eval_args(c.args, scope);
    if (caller) args.keyword.emplace_back("caller", *caller);
    try {
      return callee.function_obj().call(args);
    } catch (const TemplateError&) {
      throw;
    } catch (const RaisedFailure& f) {
      throw TemplateRaised(f.what(), c.line, c.column);
    } catch (const std::exception& f) {
      throw TemplateError(f.what(), c.line, c.column);
    }
  }

  Value filtered(const Expr& chain, Value input, const ScopePtr& scope) {
    const Value* saved = block_input_;
    block_input_ = &input;
    Value out = eval(chain, scope);
    block_input_ = saved;
    return out;
  }

  Value eval_node(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case ExprKind::Const: return static_cast<const ConstExpr&>(e).value;
      case ExprKind::Name: return lookup(static_cast<const NameExpr&>(e).name, *scope);
      case ExprKind::BlockInput: return *block_input_;
      case ExprKind::GetAttr: {
        const auto& n = static_cast<const GetAttrExpr&>(e);
        const Value obj = eval(*n.object, scope);
        if (obj.is_undefined()) throw Failure(obj.undefined_hint());
        return get_attribute(obj, n.name);
      }
      case ExprKind::GetItem: {
        const auto& n = static_cast<const GetItemExpr&>(e);
        const Value obj = eval(*n.object, scope);
        if (obj.is_undefined()) throw Failure(obj.undefined_hint());
        if (n.index->kind == ExprKind::Slice) {
          const auto& s = static_cast<const SliceExpr&>(*n.index);
          auto part = [&](const ExprPtr& p) { return p ? eval(*p, scope) : Value::none(); };
          const Value start = part(s.start), stop = part(s.stop), step = part(s.step);
          return get_slice(obj, start, stop, step);
        }
        return get_item(obj, eval(*n.index, scope));
      }
      case ExprKind::Slice: throw Failure("a slice can only be used in a subscript");
      case ExprKind::Call: return call(static_cast<const CallExpr&>(e), scope, nullptr);
      case ExprKind::Filter: {
        const auto& n = static_cast<const FilterExpr&>(e);
        if (!n.fn) throw Failure("no filter named '" + n.name + "'");
        const Value input = eval(*n.input, scope);
        CallArgs args = eval_args(n.args, scope);
        return n.fn(input, args);
      }
      case ExprKind::Test: {
        const auto& n = static_cast<const TestExpr&>(e);
        if (!n.fn) throw Failure("no test named '" + n.name + "'");
        const Value input = eval(*n.input, scope);
        CallArgs args = eval_args(n.args, scope);
        return Value(n.fn(input, args) != n.negated);
      }
      case ExprKind::Neg: return negate(eval(*static_cast<const UnaryExpr&>(e).operand, scope));
      case ExprKind::Pos: return unary_plus(eval(*static_cast<const UnaryExpr&>(e).operand, scope));
      case ExprKind::Not: return Value(!truthy(eval(*static_cast<const UnaryExpr&>(e).operand, scope)));
      case ExprKind::Binary: {
        const auto& n = static_cast<const BinaryExpr&>(e);
        const Value a = eval(*n.left, scope);
        const Value b = eval(*n.right, scope);
        return binary_op(n.op, a, b);
      }
      case ExprKind::And: case ExprKind::Or: {  // Python: returns the deciding operand
        const auto& n = static_cast<const LogicExpr&>(e);
        Value left = eval(*n.left, scope);
        if (truthy(left) == (e.kind == ExprKind::Or)) return left;
        return eval(*n.right, scope);
      }
      case ExprKind::Compare: {
        const auto& n = static_cast<const CompareExpr&>(e);
        Value left = eval(*n.first, scope);
        for (const auto& [op, expr] : n.rest) {
          Value right = eval(*expr, scope);
          bool ok = false;
          switch (op) {
            case CmpOp::Eq: ok = equals(left, right); break;
            case CmpOp::Ne: ok = !equals(left, right); break;
            case CmpOp::Lt: ok = less(left, right); break;
            case CmpOp::Le: ok = less(left, right) || equals(left, right); break;
            case CmpOp::Gt: ok = less(right, left); break;
            case CmpOp::Ge: ok = less(right, left) || equals(left, right); break;
            case CmpOp::In: ok = contains(right, left); break;
            case CmpOp::NotIn: ok = !contains(right, left); break;
          }
          if (!ok) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::Cond: {
        const auto& n = static_cast<const CondExpr&>(e);
        if (truthy(eval(*n.test, scope))) return eval(*n.then, scope);
        if (n.otherwise) return eval(*n.otherwise, scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      }
      case ExprKind::List: {
        const auto& n = static_cast<const ListExpr&>(e);
        std::vector<Value> items;
        items.reserve(n.items.size());
        for (const ExprPtr& i : n.items) items.push_back(eval(*i, scope));
        return Value::list(std::move(items), n.tuple);
      }
      case ExprKind::Dict: {
        const auto& n = static_cast<const DictExpr&>(e);
        Value d = Value::dict();
        for (const auto& [k, v] : n.items) {
          const Value key = eval(*k, scope);
          if (!key.is_string()) fail_at(*k, "dict keys must be strings (got " + type_name(key) + ")");
          d.dict_obj().set(key.as_string(), eval(*v, scope));
        }
        return d;
      }
      case ExprKind::Concat: {
        std::string out;
        for (const ExprPtr& p : static_cast<const ConcatExpr&>(e).parts) out += to_str(eval(*p, scope));
        return Value(std::move(out));
      }
    }
    throw Failure("unknown expression");
  }
};

const Value& builtin_globals() {
  static const Value g = [] {
    Value d = Value::dict();
    add_globals(d.dict_obj());
    return d;
  }();
  return g;
}

}  // namespace

Template::Template(std::string_view source) : body_(std::make_shared<const Body>(parse(source))) {}

std::string Template::render(const Value& variables) const {
  if (!variables.is_dict()) throw Error("template variables must be a dict");
  return Evaluator(variables, builtin_globals()).run(*body_);
}

}  // namespace linfer::jinja
