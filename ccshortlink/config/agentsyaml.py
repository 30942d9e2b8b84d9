"""Read YAML as written: text scalars, lines kept, no aliases, no duplicate keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

# libyaml's parser is ~20 times faster than PyYAML's; the events it yields are the same.
_PARSER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PURE_PARSER: type = yaml.SafeLoader
_REPARSE = 16 * 1024
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TEXT_TAGS = frozenset({None, "!", "tag:yaml.org,2002:str"})
_COLLECTION_TAGS = frozenset({None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

# Given each item of a top-level list as it completes (key, item, line): True when it took the
# item, so the list does not keep it. 20,000 agents then never sit in memory twice, which keeps
# the collector's pauses (the GIL held, the event loop waiting) short.
ItemTaker = Callable[[str, Any, int], bool]


class YamlSyntaxError(Exception):
    """The text is not YAML at all; `problem` names the line."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class Map(dict[str, Any]):
    """A YAML mapping: `line` of its first key and `lines` of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}


class Seq(list[Any]):
    """A YAML sequence: `line` where it starts and `lines` of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


class _Mapping:
    """A mapping being read: its keys and values arrive as alternate events."""

    def __init__(self, value: Map) -> None:
        self.value = value
        self.key: str | None = None
        self.skip = False  # the key was not text: its value is dropped


class _Reader:
    """Turns the parser's events into Map, Seq, str and None, listing every problem."""

    def __init__(self, source: str, take: ItemTaker | None) -> None:
        self.source = source
        self.take = take
        self.problems: list[str] = []
        self.stack: list[_Mapping | Seq] = []
        self.root: Any = None
        self.documents = 0
        self.aliases: list[int] = []

    def problem(self, line: int, text: str) -> None:
        self.problems.append(f"{self.source}:{line}: {text}")

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 0
        value: Any
        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event, line)
        elif isinstance(event, yaml.CollectionStartEvent):
            self._tag(event.tag, line, _COLLECTION_TAGS)
            self.stack.append(_Mapping(Map(line)) if isinstance(event, yaml.MappingStartEvent)
                              else Seq(line))
            return
        elif isinstance(event, yaml.CollectionEndEvent):
            done = self.stack.pop()
            value = done.value if isinstance(done, _Mapping) else done
            line = value.line  # a list or mapping is where it starts, not where it ends
        elif isinstance(event, yaml.AliasEvent):
            # Never expanded: a few lines of aliases can stand for gigabytes ("billion laughs").
            self.aliases.append(line)
            value = None
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents == 2:
                self.problem(line, "a second YAML document ('---'): write one document only")
            return
        else:
            return
        self._place(value, line)

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> str | None:
        # As written: `01001` stays "01001", `+86…` keeps its +; no YAML 1.1 guessing.
        self._tag(event.tag, line, _TEXT_TAGS)
        if event.tag is None and not event.style and event.value in _NULLS:
            return None
        return str(event.value)

    def _tag(self, tag: str | None, line: int, allowed: frozenset[str | None]) -> None:
        if tag not in allowed:
            self.problem(line, f"YAML tag '{tag}' is not supported: write the value as plain text")

    def _place(self, value: Any, line: int) -> None:
        if not self.stack:
            if self.documents == 1:
                self.root = value
            return
        top = self.stack[-1]
        if isinstance(top, Seq):
            root = self.stack[0]
            if self.take is not None and len(self.stack) == 2 and isinstance(root, _Mapping) \
                    and root.key is not None and self.take(root.key, value, line):
                return
            top.append(value)
            top.lines.append(line)
            return
        if top.key is None and not top.skip:
            if not isinstance(value, str):
                self.problem(line, "a key must be plain text, not a list, mapping or null")
                top.skip = True
            elif value in top.value.lines:
                self.problem(line, f"duplicate key '{value}' (first at line "
                                   f"{top.value.lines[value]})")
                top.skip = True  # the first one counts, as in the rest of this file's checks
            else:
                top.key = value
                top.value.lines[value] = line
            return
        if top.key is not None:
            top.value[top.key] = value
        top.key, top.skip = None, False


def read_yaml(text: str, source: str, take: ItemTaker | None = None) -> tuple[Any, list[str]]:
    """The document as Map/Seq/str/None, and every problem found, each as "file:line: ..."."""
    reader = _Reader(source, take)
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            reader.feed(event)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_syntax_problem(text, source, exc)) from None
    if reader.aliases:
        more = f" (and {len(reader.aliases) - 1} more)" if len(reader.aliases) > 1 else ""
        reader.problem(reader.aliases[0], f"YAML aliases (*name) are not allowed{more}: "
                                          "write each value out in full")
    return reader.root, reader.problems


def _syntax_problem(text: str, source: str, exc: yaml.YAMLError) -> str:
    """PyYAML's own wording where it is quick to get (clearer than libyaml's), else libyaml's."""
    mark = getattr(exc, "problem_mark", None)
    if _PARSER is not _PURE_PARSER and mark is not None \
            and "nesting depth" not in str(getattr(exc, "problem", "")):
        # Up to the end of the bad line: PyYAML's parser is ~20 times slower than libyaml's
        # and quadratic in nesting, so it reads at most _REPARSE characters (under a second).
        end = text.find("\n", mark.index)
        prefix = text if end < 0 else text[:end + 1]
        if len(prefix) <= _REPARSE:
            try:
                for _ in yaml.parse(prefix, Loader=_PURE_PARSER):
                    pass
            except yaml.YAMLError as pure:
                exc, mark = pure, getattr(pure, "problem_mark", None)
    where = f"{source}:{mark.line + 1}" if mark else source
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: not valid YAML: {problem}"
