"""Stand-ins for the log and the counters a use case is handed, for tests of one part."""

from __future__ import annotations


class Quiet:
    """A log that says nothing (app.ports.Log)."""

    def bind(self, **fields: object) -> Quiet:
        return self

    def debug(self, *args: object, **fields: object) -> None: ...
    def info(self, *args: object, **fields: object) -> None: ...
    def warning(self, *args: object, **fields: object) -> None: ...
    def error(self, *args: object, **fields: object) -> None: ...


class Counts:
    """A counter or gauge (app.ports.Counter, Gauge) that keeps its value."""

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value
