"""One shutdown budget: a deadline taken at the first stop signal, each part bounded by it."""

from __future__ import annotations

import time
from collections.abc import Callable

# Share of the budget kept, while the tasks wind down, for what closes after them (the web
# server and its visit flush, the SMPP unbind, the database).
CLOSING_SHARE = 0.2


class StopBudget:
    """`total` seconds from `start()` for the whole stop, however its parts add up.

    Every part asks `bound(its own cap)` just before it waits and gets no more than what is
    left, so the parts in turn can never together exceed `total` (the unit's TimeoutStopSec
    leaves a margin above it). `expire()` (a second signal) leaves nothing to anyone.
    """

    def __init__(self, total: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self._clock = clock
        self.deadline: float | None = None  # None: not stopping yet

    def start(self) -> None:
        """The first stop signal: the budget runs from now (a later call changes nothing)."""
        if self.deadline is None:
            self.deadline = self._clock() + self.total

    def expire(self) -> None:
        """A forced stop: every part still waiting gets no more time."""
        self.deadline = self._clock()

    def left(self) -> float:
        if self.deadline is None:
            return self.total
        return max(0.0, self.deadline - self._clock())

    def bound(self, cap: float, *, keep: float = 0.0) -> float:
        """At most `cap` s, and never more than what is left less `keep` for later parts."""
        return max(0.0, min(cap, self.left() - keep))

    def for_tasks(self, cap: float) -> float:
        """A bound for a task winding down, keeping the closing parts' share of the budget."""
        return self.bound(cap, keep=self.total * CLOSING_SHARE)
