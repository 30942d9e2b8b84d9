"""Typed, bounded reads from one TOML table, and the keys nobody read: problems, never raises."""

from __future__ import annotations

import difflib
import math
from datetime import time
from typing import Any

HOUR, DAY = 3600.0, 86400.0  # bounds of durations, in seconds


def did_you_mean(word: str, known: list[str]) -> str:
    """' (did you mean X?)' for the closest known word, or '' when none is close."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Reader:
    """Pulls typed values out of one TOML table, collecting problems instead of raising.

    Every key read is remembered, so `unknown_keys` can name the rest: a misspelt key is an
    error, never a silently ignored line.
    """

    def __init__(self, data: dict[str, Any], section: str, problems: list[str]) -> None:
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            problems.append(f"[{section}] must be a table")
            raw = {}
        self.table: dict[str, Any] = raw
        self.section = section
        self.problems = problems
        self.known: list[str] = []

    def raw(self, key: str, default: Any = None) -> Any:
        """The untyped value (for tables checked by the caller); the key counts as known."""
        self.known.append(key)
        return self.table.get(key, default)

    def _get(self, key: str, kinds: tuple[type, ...], default: Any, required: bool) -> Any:
        self.known.append(key)
        if key not in self.table:
            if required:
                self.problems.append(f"[{self.section}] {key} is required")
            return default
        value = self.table[key]
        # bool is an int subclass: never accept it where a number is wanted
        if isinstance(value, bool) and bool not in kinds:
            value = None
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            shown = repr(self.table[key])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            self.problems.append(f"[{self.section}] {key} must be {names}, got {shown}")
            return default
        return value

    def text(self, key: str, default: str = "", *, required: bool = False,
             max_length: int | None = None) -> str:
        value: str = self._get(key, (str,), default, required)
        if required and isinstance(value, str) and not value.strip() and key in self.table:
            self.problems.append(f"[{self.section}] {key} must not be empty")
        if max_length is not None and len(value) > max_length:
            self.problems.append(f"[{self.section}] {key} is {len(value)} characters, "
                                 f"at most {max_length} allowed")
        return value

    def number(self, key: str, default: float = 0.0, *, minimum: float | None = None,
               maximum: float | None = None) -> float:
        raw = self._get(key, (int, float), default, False)
        value = float(raw) if not isinstance(raw, int) or abs(raw) < 2**64 else math.inf
        if not math.isfinite(value):
            shown = value if isinstance(raw, float) else "a number too large"
            self.problems.append(f"[{self.section}] {key} must be a finite number, got {shown}")
            return default
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            self.problems.append(f"[{self.section}] {key} must be in {_span(minimum, maximum)}, "
                                 f"got {value:g}")
        return value

    def integer(self, key: str, default: int = 0, *, minimum: int | None = None,
                maximum: int | None = None, required: bool = False) -> int:
        value = int(self._get(key, (int,), default, required))
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            shown = value if abs(value) < 10**18 else "a number too large"
            self.problems.append(f"[{self.section}] {key} must be in {_span(minimum, maximum)}, "
                                 f"got {shown}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, (bool,), default, False))

    def words(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, (list,), list(default), False)
        if not all(isinstance(v, str) for v in value):
            self.problems.append(f"[{self.section}] {key} must be a list of strings")
            return default
        return tuple(value)

    def clock(self, key: str) -> time | None:
        value = self.text(key)
        if not value:
            return None
        try:
            return time.fromisoformat(value)
        except ValueError:
            self.problems.append(f"[{self.section}] {key} must be HH:MM, got {value!r}")
            return None

    def report_unknown(self) -> None:
        """One problem per key in the table that no read asked for."""
        for key in self.table:
            if key not in self.known:
                self.problems.append(f"unknown key [{self.section}] {key}"
                                     f"{did_you_mean(key, self.known)}")


def report_unknown_sections(data: dict[str, Any], known: list[str], problems: list[str]) -> None:
    for name, value in data.items():
        if name in known:
            continue
        if isinstance(value, dict):
            problems.append(f"unknown section [{name}]{did_you_mean(name, known)}")
        else:
            problems.append(f"unknown top-level key {name} (keys belong in a [section])")


def _span(minimum: float | None, maximum: float | None) -> str:
    def shown(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    low = "-inf" if minimum is None else shown(minimum)
    high = "inf" if maximum is None else shown(maximum)
    return f"{low}..{high}"
