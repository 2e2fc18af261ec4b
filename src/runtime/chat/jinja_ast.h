#pragma once
// The parsed form of a template: expressions and statements, each with the line and column where
// it starts. Filters and tests are resolved while parsing (an unknown name is a syntax error, as in
// Jinja2), so rendering only looks up variables.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_value.h"

namespace linfer::jinja {

struct Node {
  int line = 0, column = 0;
};

enum class ExprKind {
  Const, Name, GetAttr, GetItem, Slice, Call, Filter, Test, Neg, Pos, Binary, And, Or, Not, Compare, Cond,
  List, Dict, Concat, BlockInput
};

struct Expr : Node {
  ExprKind kind;
  explicit Expr(ExprKind k) : kind(k) {}
  virtual ~Expr() = default;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Args {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct ConstExpr : Expr { Value value; ConstExpr() : Expr(ExprKind::Const) {} };
struct NameExpr : Expr { std::string name; NameExpr() : Expr(ExprKind::Name) {} };
struct GetAttrExpr : Expr { ExprPtr object; std::string name; GetAttrExpr() : Expr(ExprKind::GetAttr) {} };
struct GetItemExpr : Expr { ExprPtr object, index; GetItemExpr() : Expr(ExprKind::GetItem) {} };
struct SliceExpr : Expr { ExprPtr start, stop, step; SliceExpr() : Expr(ExprKind::Slice) {} };  // each may be null
struct CallExpr : Expr { ExprPtr callee; Args args; CallExpr() : Expr(ExprKind::Call) {} };
struct FilterExpr : Expr {
  ExprPtr input;  // a BlockInput expression in `{% filter %}` and `{% set x | f %}` blocks
  std::string name;
  FilterFn fn = nullptr;
  Args args;
  FilterExpr() : Expr(ExprKind::Filter) {}
};
struct TestExpr : Expr {
  ExprPtr input;
  std::string name;
  TestFn fn = nullptr;
  Args args;
  bool negated = false;
  TestExpr() : Expr(ExprKind::Test) {}
};
struct UnaryExpr : Expr { ExprPtr operand; explicit UnaryExpr(ExprKind k) : Expr(k) {} };  // Neg, Pos, Not

enum class BinOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
struct BinaryExpr : Expr { BinOp op; ExprPtr left, right; BinaryExpr() : Expr(ExprKind::Binary) {} };
struct LogicExpr : Expr { ExprPtr left, right; explicit LogicExpr(ExprKind k) : Expr(k) {} };  // And, Or

enum class CmpOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };
struct CompareExpr : Expr {
  ExprPtr first;
  std::vector<std::pair<CmpOp, ExprPtr>> rest;  // a < b <= c: each compares with the previous operand
  CompareExpr() : Expr(ExprKind::Compare) {}
};
struct CondExpr : Expr { ExprPtr test, then, otherwise; CondExpr() : Expr(ExprKind::Cond) {} };  // otherwise may be null
struct ListExpr : Expr { std::vector<ExprPtr> items; bool tuple = false; ListExpr() : Expr(ExprKind::List) {} };
struct DictExpr : Expr { std::vector<std::pair<ExprPtr, ExprPtr>> items; DictExpr() : Expr(ExprKind::Dict) {} };
struct ConcatExpr : Expr { std::vector<ExprPtr> parts; ConcatExpr() : Expr(ExprKind::Concat) {} };
struct BlockInputExpr : Expr { BlockInputExpr() : Expr(ExprKind::BlockInput) {} };

// ---- statements ---------------------------------------------------------------------------------

enum class StmtKind { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, With, Break, Continue };

struct Stmt : Node {
  StmtKind kind;
  explicit Stmt(StmtKind k) : kind(k) {}
  virtual ~Stmt() = default;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// What `set` and `for` assign to: one name, several names unpacked from a sequence, or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;   // `for k, v in ...`
  std::string attribute;  // non-empty: `set names[0].attribute = ...` on a namespace
};

struct Param {
  std::string name;
  ExprPtr fallback;  // default value, may be null
};

struct TextStmt : Stmt { std::string text; TextStmt() : Stmt(StmtKind::Text) {} };
struct OutputStmt : Stmt { ExprPtr expr; OutputStmt() : Stmt(StmtKind::Output) {} };
struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif, ...
  Body otherwise;
  IfStmt() : Stmt(StmtKind::If) {}
};
struct ForStmt : Stmt {
  Target target;
  ExprPtr iterable, filter;  // filter: `for x in xs if cond`, may be null
  Body body, otherwise;
  ForStmt() : Stmt(StmtKind::For) {}
};
struct SetStmt : Stmt { Target target; ExprPtr value; SetStmt() : Stmt(StmtKind::Set) {} };
struct SetBlockStmt : Stmt {
  Target target;
  ExprPtr filter;  // may be null; applies to the rendered body through BlockInput
  Body body;
  SetBlockStmt() : Stmt(StmtKind::SetBlock) {}
};
struct MacroStmt : Stmt {
  std::string name;
  std::vector<Param> params;
  Body body;
  MacroStmt() : Stmt(StmtKind::Macro) {}
};
struct CallBlockStmt : Stmt {
  std::unique_ptr<CallExpr> call;
  std::vector<Param> params;  // of `caller`
  Body body;
  CallBlockStmt() : Stmt(StmtKind::CallBlock) {}
};
struct FilterBlockStmt : Stmt { ExprPtr filter; Body body; FilterBlockStmt() : Stmt(StmtKind::FilterBlock) {} };
struct WithStmt : Stmt {
  std::vector<std::pair<Target, ExprPtr>> assignments;
  Body body;
  WithStmt() : Stmt(StmtKind::With) {}
};
struct LoopControlStmt : Stmt { explicit LoopControlStmt(StmtKind k) : Stmt(k) {} };  // Break, Continue

}  // namespace linfer::jinja
