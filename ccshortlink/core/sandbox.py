"""A bounded Jinja sandbox for SMS templates: no Python reach; loops, sizes and time capped."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_ITERATIONS = 10_000  # loop iterations in one render, all loops together
MAX_TEXT = 4_000  # characters in any value or in the output: ~60 UCS-2 parts, far past any SMS
MAX_INT_BITS = 4_096  # integers beyond this only serve to burn CPU
MAX_INT_ARGUMENT = 10_000  # widths, counts and lengths handed to filters and methods
# CPU seconds of the rendering thread for one render; a correct SMS template takes microseconds.
# CPU time, not wall time: a busy machine that pauses the thread must not fail a good SMS.
TIME_LIMIT = 0.25

# A numeric width of 5+ digits or a `*` width in a format string would allocate megabytes.
_WIDE_FORMAT = re.compile(r"\d{5,}|%[^a-zA-Z%]*\*")
# Filters whose integer arguments are widths or counts: a huge one is a memory bomb.
_SIZED_FILTERS = frozenset(["center", "indent", "wordwrap", "truncate", "batch", "slice"])


class TemplateLimitError(SecurityError):
    """A template went past one of the sandbox's bounds."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0

    def tick(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateLimitError(f"rendering took longer than {TIME_LIMIT:g} s")


_budget: ContextVar[_Budget | None] = ContextVar("sms_template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def _check_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise TemplateLimitError(f"a value longer than {MAX_TEXT} characters")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"a number larger than {MAX_INT_BITS} bits")
    if isinstance(value, (list, tuple, dict, set)) and len(value) > MAX_ITERATIONS:
        raise TemplateLimitError(f"a collection of more than {MAX_ITERATIONS} items")
    return value


def _check_arguments(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_INT_ARGUMENT:
            raise TemplateLimitError(f"an argument above {MAX_INT_ARGUMENT}: {arg}")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise TemplateLimitError("a format string with a huge or variable width")


def _bounded_loop(iterable: Any) -> Iterator[Any]:
    """Every `{% for %}` iterates through here: the render's iterations are counted."""
    budget = _budget.get()
    for item in iterable:
        if budget is not None:
            budget.iterations += 1
            if budget.iterations > MAX_ITERATIONS:
                raise TemplateLimitError(f"more than {MAX_ITERATIONS} loop iterations")
            budget.tick()
        yield item


def _bounded_range(*args: int) -> range:
    span = range(*args)  # lazy: even range(10**100) costs nothing until iterated
    if len(span) > MAX_ITERATIONS:
        raise TemplateLimitError(f"range of {len(span)} numbers, at most {MAX_ITERATIONS}")
    return span


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name in _SIZED_FILTERS:
            _check_arguments(list(args) + list(kwargs.values()))
        if name == "format" and args:
            _check_format(args[0])
        return _check_value(func(*args, **kwargs))
    return guarded


def _concat(parts: list[Any]) -> str:
    text = "".join(str(part) for part in parts)
    _check_value(text)
    return text


class _Bounds(NodeTransformer):
    """Rewrites the parsed template so loops, `~` and `{{ }}` go through the checks above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_bounded_loop", [], [], None, None,
                                 lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), "_concat", [], [], None,
                            None, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [child if isinstance(child, nodes.TemplateData) else
                      nodes.Filter(child, "_checked", [], [], None, None, lineno=child.lineno)
                      for child in node.nodes]
        return node


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Sandboxed (no attributes of Python internals, no mutation) and bounded in work and size."""

    intercepted_binops = frozenset(["*", "**", "+", "%", "//", "/", "-"])

    def __init__(self) -> None:
        # optimized=False: no constant folding, so `{{ 9**9**9 }}` is never computed at compile.
        super().__init__(autoescape=False, undefined=StrictUndefined, optimized=False,
                         keep_trailing_newline=False)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(_bounded_loop=_bounded_loop, _concat=_concat, _checked=_check_value)
        kept = {name: self.globals[name] for name in ("namespace", "cycler", "joiner")}
        self.globals = {"range": _bounded_range, "dict": dict, **kept}  # no lipsum

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        bounded = _Bounds().visit(tree)
        assert isinstance(bounded, nodes.Template)
        return bounded

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**" and isinstance(right, int) and isinstance(left, int) and (
                right > MAX_INT_BITS or abs(left).bit_length() * right > MAX_INT_BITS):
            raise TemplateLimitError(f"a number larger than {MAX_INT_BITS} bits")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and \
                        len(seq) * count > MAX_TEXT:
                    raise TemplateLimitError(f"a value longer than {MAX_TEXT} characters")
        if operator == "%" and isinstance(left, str):
            _check_format(left)
        return _check_value(super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        # The sandbox hands str.format out wrapped; the original method is __wrapped__.
        method = getattr(obj, "__wrapped__", obj)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, (str, list, tuple)):  # ljust, zfill, center, format...: sizes
            _check_arguments(list(args) + list(kwargs.values()))
            name = getattr(method, "__name__", "")
            if isinstance(owner, str) and name in ("format", "format_map"):
                _check_format(owner.replace("%", ""))
        return _check_value(super().call(context, obj, *args, **kwargs))


def render_bounded(template: Template, **values: Any) -> str:
    """Render within the bounds; raises TemplateLimitError (or the template's own error)."""
    token = _budget.set(_Budget(deadline=time.thread_time() + TIME_LIMIT))
    try:
        text: str = template.render(**values)
    finally:
        _budget.reset(token)
    if len(text) > MAX_TEXT:
        raise TemplateLimitError(f"output longer than {MAX_TEXT} characters")
    return text
