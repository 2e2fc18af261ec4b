#!/usr/bin/env python3
"""Reference renderer for linfer's chat-template tests.

Renders each case with Jinja2 configured as transformers' apply_chat_template configures it:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, a `{% generation %}` block, transformers' tojson filter (json.dumps, ensure_ascii=False by
default), raise_exception and strftime_now. A case with "mutable": true uses the plain
SandboxedEnvironment, which lets list.append / dict.pop run (the immutable sandbox refuses them).

    jinja_render.py CASES.json RESULTS.json
    CASES:   [{"template": "...", "context": {...}, "mutable": false}, ...]
    RESULTS: [{"ok": true, "text": "..."} or {"ok": false, "error": "UndefinedError: ..."}, ...]
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


class Generation(Extension):
    """transformers' AssistantTracker without the tracking: the body renders as a call block."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment(mutable):
    cls = SandboxedEnvironment if mutable else ImmutableSandboxedEnvironment
    env = cls(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(case):
    try:
        template = environment(case.get("mutable", False)).from_string(case["template"])
        return {"ok": True, "text": template.render(**case.get("context", {}))}
    except Exception as e:  # the test compares outcomes: any failure is "the template failed"
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump([render(c) for c in cases], f)


if __name__ == "__main__":
    main()
