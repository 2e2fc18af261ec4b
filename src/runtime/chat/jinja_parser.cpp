#include "runtime/chat/jinja_parser.h"

#include <algorithm>

#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_lexer.h"

namespace linfer::jinja {

namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::Text: return "template text";
    case Tok::VarBegin: return "'{{'";
    case Tok::VarEnd: return "end of print statement '}}'";
    case Tok::BlockBegin: return "'{%'";
    case Tok::BlockEnd: return "end of statement block '%}'";
    case Tok::End: return "end of template";
    case Tok::String: return "string literal";
    case Tok::Int: case Tok::Float: return "number " + t.text;
    default: return "'" + t.text + "'";
  }
}

template <class T>
std::unique_ptr<T> at(const Token& t, std::unique_ptr<T> node) {
  node->line = t.line;
  node->column = t.column;
  return node;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    std::string end;
    Body body = subparse({}, end);
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int expr_depth_ = 0;
  static constexpr int kMaxNesting = 100;  // real templates nest a few levels; this bounds the stack (~0.3 MB)
  // Unknown filters and tests fail when the template is parsed, except inside an `if` statement or an
  // inline `x if c else y` (Jinja2's "soft" frames), where they fail only if evaluated.
  bool soft_ = false;
  std::vector<Token> unknown_;  // unknown names seen in the expression being parsed
  struct Open { std::string tag; int line; };
  std::vector<Open> open_;  // blocks being parsed, for "not closed" messages

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { const Token& t = t_[i_]; if (i_ + 1 < t_.size()) ++i_; return t; }

  [[noreturn]] void fail(const std::string& why, const Token& where) const {
    throw TemplateError(why, where.line, where.column);
  }

  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == Tok::Name && cur().text == name; }
  bool skip_op(const char* op) { if (!is_op(op)) return false; next(); return true; }
  bool skip_name(const char* name) { if (!is_name(name)) return false; next(); return true; }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()), cur());
  }
  const Token& expect_name() {
    if (cur().type != Tok::Name) fail("expected a name, got " + describe(cur()), cur());
    return next();
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) fail("expected end of statement block '%}', got " + describe(cur()), cur());
    next();
  }

  // ---- statements -------------------------------------------------------------------------------

  // Parses until a block tag named in `ends`; leaves the position after that tag's name and stores
  // the name in `end`. With no `ends`, parses to the end of the template.
  Body subparse(std::initializer_list<const char*> ends, std::string& end) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::End) {
        if (ends.size() == 0) return body;
        std::string names;
        for (const char* e : ends) names += std::string(names.empty() ? "" : " or ") + "'" + e + "'";
        const Open& o = open_.back();
        throw TemplateError(fmt::format("unexpected end of template: the '{}' block opened on line {} is not closed "
                                        "(expected {})", o.tag, o.line, names), t.line, t.column);
      }
      if (t.type == Tok::Text) {
        auto s = at(t, std::make_unique<TextStmt>());
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::VarBegin) {
        next();
        auto s = at(t, std::make_unique<OutputStmt>());
        s->expr = parse_tuple(true, {});
        settle_unknown();
        if (cur().type != Tok::VarEnd) fail("expected end of print statement '}}', got " + describe(cur()), cur());
        next();
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        next();
        if (cur().type != Tok::Name) fail("expected a tag name after '{%', got " + describe(cur()), cur());
        for (const char* e : ends) {
          if (cur().text == e) { end = e; next(); return body; }
        }
        statement(body);
      } else {
        fail("unexpected " + describe(t), t);
      }
    }
  }

  Body block_body(const Token& opener, std::initializer_list<const char*> ends, std::string& end) {
    expect_block_end();
    if (int(open_.size()) >= kMaxNesting) fail("blocks nested too deeply", opener);
    open_.push_back({opener.text, opener.line});
    Body body = subparse(ends, end);
    open_.pop_back();
    return body;
  }

  void end_tag() { expect_block_end(); }

  // Called after each expression a statement evaluates: unknown filters / tests in it are errors
  // unless the statement sits in a soft frame.
  void settle_unknown() {
    if (!soft_ && !unknown_.empty()) {
      const Token& t = unknown_.front();
      fail(t.text, t);
    }
    unknown_.clear();
  }

  // The body of a for / macro / call / filter / set / with block is a new, hard frame.
  Body hard_block_body(const Token& opener, std::initializer_list<const char*> ends, std::string& end) {
    const bool saved = soft_;
    soft_ = false;
    Body body = block_body(opener, ends, end);
    soft_ = saved;
    return body;
  }

  void statement(Body& body) {
    const Token& t = cur();
    const std::string& tag = t.text;
    if (tag == "if") body.push_back(parse_if());
    else if (tag == "for") body.push_back(parse_for());
    else if (tag == "set") body.push_back(parse_set());
    else if (tag == "macro") body.push_back(parse_macro());
    else if (tag == "call") body.push_back(parse_call_block());
    else if (tag == "filter") body.push_back(parse_filter_block());
    else if (tag == "with") body.push_back(parse_with());
    else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", t);
      next();
      end_tag();
      body.push_back(at(t, std::make_unique<LoopControlStmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue)));
    } else if (tag == "generation") {
      // transformers' AssistantTracker: a call block around the body, so the body gets its own scope
      next();
      auto w = at(t, std::make_unique<WithStmt>());
      std::string end;
      w->body = hard_block_body(t, {"endgeneration"}, end);
      end_tag();
      body.push_back(std::move(w));
    } else if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" || tag == "block") {
      fail("'{% " + tag + " %}' is not supported: a chat template must be self-contained", t);
    } else {
      fail("unknown tag '" + tag + "'", t);
    }
  }

  StmtPtr parse_if() {
    const Token& t = next();
    auto s = at(t, std::make_unique<IfStmt>());
    const bool saved = soft_;
    soft_ = true;
    std::string end;
    while (true) {
      ExprPtr test = parse_tuple(false, {});
      settle_unknown();
      Body body = block_body(t, {"elif", "else", "endif"}, end);
      s->branches.emplace_back(std::move(test), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        s->otherwise = block_body(t, {"endif"}, end);
      }
      break;
    }
    soft_ = saved;
    end_tag();
    return s;
  }

  Target parse_target(bool allow_namespace, std::initializer_list<const char*> stop) {
    Target target;
    if (allow_namespace && cur().type == Tok::Name && peek().type == Tok::Op && peek().text == ".") {
      target.names.push_back(next().text);
      next();
      target.attribute = expect_name().text;
      return target;
    }
    const bool parens = skip_op("(");
    while (true) {
      target.names.push_back(expect_name().text);
      if (!skip_op(",")) break;
      target.unpack = true;
      if (is_op(")") || is_op("=") || std::any_of(stop.begin(), stop.end(), [&](const char* s) { return is_name(s); })) break;
    }
    if (parens) { expect_op(")"); target.unpack = true; }
    return target;
  }

  StmtPtr parse_for() {
    const Token& t = next();
    auto s = at(t, std::make_unique<ForStmt>());
    s->target = parse_target(false, {"in"});
    if (!skip_name("in")) fail("expected 'in' in the for loop, got " + describe(cur()), cur());
    s->iterable = parse_tuple(false, {"recursive"});
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported", cur());
    settle_unknown();
    std::string end;
    ++loop_depth_;
    s->body = hard_block_body(t, {"endfor", "else"}, end);
    --loop_depth_;
    if (end == "else") s->otherwise = hard_block_body(t, {"endfor"}, end);
    end_tag();
    return s;
  }

  StmtPtr parse_set() {
    const Token& t = next();
    Target target = parse_target(true, {});
    if (skip_op("=")) {
      auto s = at(t, std::make_unique<SetStmt>());
      s->target = std::move(target);
      s->value = parse_tuple(true, {});
      settle_unknown();
      end_tag();
      return s;
    }
    auto s = at(t, std::make_unique<SetBlockStmt>());
    s->target = std::move(target);
    if (is_op("|")) s->filter = parse_filters(at(cur(), std::make_unique<BlockInputExpr>()));
    settle_unknown();
    std::string end;
    s->body = hard_block_body(t, {"endset"}, end);
    end_tag();
    return s;
  }

  std::vector<Param> parse_signature() {
    std::vector<Param> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param p;
      p.name = expect_name().text;
      if (skip_op("=")) p.fallback = parse_expression(true);
      else if (!params.empty() && params.back().fallback) fail("non-default argument follows default argument", cur());
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro() {
    const Token& t = next();
    auto s = at(t, std::make_unique<MacroStmt>());
    s->name = expect_name().text;
    s->params = parse_signature();
    settle_unknown();
    const int saved = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = hard_block_body(t, {"endmacro"}, end);
    loop_depth_ = saved;
    end_tag();
    return s;
  }

  StmtPtr parse_call_block() {
    const Token& t = next();
    auto s = at(t, std::make_unique<CallBlockStmt>());
    if (is_op("(")) s->params = parse_signature();
    ExprPtr call = parse_expression(true);
    if (call->kind != ExprKind::Call) fail("expected a macro call after '{% call %}'", t);
    s->call.reset(static_cast<CallExpr*>(call.release()));
    settle_unknown();
    const int saved = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = hard_block_body(t, {"endcall"}, end);
    loop_depth_ = saved;
    end_tag();
    return s;
  }

  StmtPtr parse_filter_block() {
    const Token& t = next();
    auto s = at(t, std::make_unique<FilterBlockStmt>());
    s->filter = parse_filter_chain(at(t, std::make_unique<BlockInputExpr>()), true);
    settle_unknown();
    std::string end;
    s->body = hard_block_body(t, {"endfilter"}, end);
    end_tag();
    return s;
  }

  StmtPtr parse_with() {
    const Token& t = next();
    auto s = at(t, std::make_unique<WithStmt>());
    while (cur().type != Tok::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target target = parse_target(false, {});
      expect_op("=");
      s->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    settle_unknown();
    std::string end;
    s->body = hard_block_body(t, {"endwith"}, end);
    end_tag();
    return s;
  }

  // ---- expressions ------------------------------------------------------------------------------

  bool is_tuple_end(std::initializer_list<const char*> extra) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || cur().type == Tok::End) return true;
    if (is_op(")")) return true;
    return std::any_of(extra.begin(), extra.end(), [&](const char* s) { return is_name(s); });
  }

  // An expression, or a tuple when commas separate several (`{% set a = 1, 2 %}`).
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end) {
    const Token& t = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) fail("expected an expression, got " + describe(cur()), cur());
      return std::move(items[0]);
    }
    auto l = at(t, std::make_unique<ListExpr>());
    l->items = std::move(items);
    l->tuple = true;
    return l;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    const size_t mark = unknown_.size();
    ExprPtr expr = parse_or();
    const bool is_cond = is_name("if");
    while (is_name("if")) {
      const Token& t = next();
      auto c = at(t, std::make_unique<CondExpr>());
      c->then = std::move(expr);
      c->test = parse_or();
      if (skip_name("else")) c->otherwise = parse_condexpr();
      expr = std::move(c);
    }
    if (is_cond) unknown_.resize(mark);  // every part of an inline if is a soft frame
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      auto e = at(next(), std::make_unique<LogicExpr>(ExprKind::Or));
      e->left = std::move(left);
      e->right = parse_and();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      auto e = at(next(), std::make_unique<LogicExpr>(ExprKind::And));
      e->left = std::move(left);
      e->right = parse_not();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto e = at(next(), std::make_unique<UnaryExpr>(ExprKind::Not));
      e->operand = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& t = cur();
    ExprPtr first = parse_math1();
    std::vector<std::pair<CmpOp, ExprPtr>> rest;
    while (true) {
      CmpOp op;
      if (is_op("==")) op = CmpOp::Eq;
      else if (is_op("!=")) op = CmpOp::Ne;
      else if (is_op("<")) op = CmpOp::Lt;
      else if (is_op("<=")) op = CmpOp::Le;
      else if (is_op(">")) op = CmpOp::Gt;
      else if (is_op(">=")) op = CmpOp::Ge;
      else if (is_name("in")) op = CmpOp::In;
      else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") { next(); op = CmpOp::NotIn; }
      else break;
      next();
      rest.emplace_back(op, parse_math1());
    }
    if (rest.empty()) return first;
    auto c = at(t, std::make_unique<CompareExpr>());
    c->first = std::move(first);
    c->rest = std::move(rest);
    return c;
  }

  ExprPtr binary(const Token& t, BinOp op, ExprPtr left, ExprPtr right) {
    auto e = at(t, std::make_unique<BinaryExpr>());
    e->op = op;
    e->left = std::move(left);
    e->right = std::move(right);
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      left = binary(t, t.text == "+" ? BinOp::Add : BinOp::Sub, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const Token& t = cur();
    std::vector<ExprPtr> parts;
    parts.push_back(parse_math2());
    while (skip_op("~")) parts.push_back(parse_math2());
    if (parts.size() == 1) return std::move(parts[0]);
    auto c = at(t, std::make_unique<ConcatExpr>());
    c->parts = std::move(parts);
    return c;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      const BinOp op = t.text == "*" ? BinOp::Mul : t.text == "/" ? BinOp::Div : t.text == "//" ? BinOp::FloorDiv : BinOp::Mod;
      left = binary(t, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& t = next();
      left = binary(t, BinOp::Pow, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    // every nested sub-expression passes here: bound the recursion so no template overflows the stack
    struct Depth {
      int& d;
      explicit Depth(int& depth) : d(++depth) {}
      ~Depth() { --d; }
    } depth(expr_depth_);
    if (expr_depth_ > kMaxNesting) fail("expression nested too deeply", cur());
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      auto u = at(t, std::make_unique<UnaryExpr>(t.text == "-" ? ExprKind::Neg : ExprKind::Pos));
      u->operand = parse_unary(false);
      node = std::move(u);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filters(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::Name: {
        next();
        if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
          auto c = at(t, std::make_unique<ConstExpr>());
          c->value = Value(t.text == "true" || t.text == "True");
          return c;
        }
        if (t.text == "none" || t.text == "None") {
          auto c = at(t, std::make_unique<ConstExpr>());
          c->value = Value::none();
          return c;
        }
        auto n = at(t, std::make_unique<NameExpr>());
        n->name = t.text;
        return n;
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) s += next().text;  // adjacent literals concatenate
        auto c = at(t, std::make_unique<ConstExpr>());
        c->value = Value(std::move(s));
        return c;
      }
      case Tok::Int: case Tok::Float: {
        next();
        auto c = at(t, std::make_unique<ConstExpr>());
        c->value = t.type == Tok::Int ? Value(t.int_value) : Value(t.float_value);
        return c;
      }
      case Tok::Op:
        if (t.text == "(") {
          next();
          if (skip_op(")")) {  // ()
            auto l = at(t, std::make_unique<ListExpr>());
            l->tuple = true;
            return l;
          }
          ExprPtr e = parse_tuple(true, {});
          expect_op(")");
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default: break;
    }
    fail("unexpected " + describe(t), t);
  }

  ExprPtr parse_list() {
    auto l = at(next(), std::make_unique<ListExpr>());
    while (!is_op("]")) {
      if (!l->items.empty()) expect_op(",");
      if (is_op("]")) break;
      l->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return l;
  }

  ExprPtr parse_dict() {
    auto d = at(next(), std::make_unique<DictExpr>());
    while (!is_op("}")) {
      if (!d->items.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      d->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return d;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filters(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter_chain(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.text == ".") {
      const Token& a = cur();
      if (a.type == Tok::Name) {
        next();
        auto g = at(t, std::make_unique<GetAttrExpr>());
        g->object = std::move(node);
        g->name = a.text;
        return g;
      }
      if (a.type != Tok::Int) fail("expected a name or a number after '.', got " + describe(a), a);
      next();
      auto g = at(t, std::make_unique<GetItemExpr>());
      g->object = std::move(node);
      auto c = at(a, std::make_unique<ConstExpr>());
      c->value = Value(a.int_value);
      g->index = std::move(c);
      return g;
    }
    auto g = at(t, std::make_unique<GetItemExpr>());
    g->object = std::move(node);
    g->index = parse_subscribed();
    if (is_op(",")) fail("tuple subscripts are not supported", cur());
    expect_op("]");
    return g;
  }

  ExprPtr parse_subscribed() {
    const Token& t = cur();
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (!is_op(":")) return start;
    }
    auto s = at(t, std::make_unique<SliceExpr>());
    s->start = std::move(start);
    next();  // ':'
    if (!is_op("]") && !is_op(",") && !is_op(":")) s->stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) s->step = parse_expression(true);
    }
    return s;
  }

  Args parse_args() {
    Args args;
    expect_op("(");
    while (!is_op(")")) {
      if (!args.positional.empty() || !args.keyword.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported", cur());
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!args.keyword.empty()) fail("positional argument follows keyword argument", cur());
        args.positional.push_back(parse_expression(true));
      }
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = std::make_unique<CallExpr>();  // positioned where the callee starts: `raise_exception(...)`
    c->line = callee->line;
    c->column = callee->column;
    c->callee = std::move(callee);
    c->args = parse_args();
    return c;
  }

  // `| name(args) | name ...` applied to node; `start_inline`: the first '|' is implied ({% filter %}).
  ExprPtr parse_filter_chain(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const Token& name = expect_name();
      if (is_op(".")) fail("dotted filter names are not supported", cur());
      auto f = at(name, std::make_unique<FilterExpr>());
      f->input = std::move(node);
      f->name = name.text;
      f->fn = find_filter(name.text);
      if (!f->fn) unknown_.push_back(Token{name.type, "no filter named '" + name.text + "'", 0, 0, name.line, name.column});
      if (is_op("(")) f->args = parse_args();
      node = std::move(f);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& is = next();
    auto e = at(is, std::make_unique<TestExpr>());
    e->input = std::move(node);
    e->negated = skip_name("not");
    const Token& name = cur();
    if (name.type != Tok::Name) fail("expected a test name after 'is', got " + describe(name), name);
    next();
    e->line = name.line;  // errors point at the test's name
    e->column = name.column;
    e->name = name.text;
    e->fn = find_test(name.text);
    if (!e->fn) unknown_.push_back(Token{name.type, "no test named '" + name.text + "'", 0, 0, name.line, name.column});
    if (is_op("(")) {
      e->args = parse_args();
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int || cur().type == Tok::Float ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with 'is'", cur());
      e->args.positional.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`
    }
    return e;
  }
};

}  // namespace

Body parse(std::string_view source) { return Parser(tokenize(source)).parse_template(); }

}  // namespace linfer::jinja
