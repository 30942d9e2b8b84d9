"""Riding out database faults: capped backoff, one log line per outage, retry until stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ccshortlink.app.ports import FaultTest, Log
from ccshortlink.core.describe import describe

T = TypeVar("T")
BACKOFF_FIRST = 0.5  # s: a lock is often gone this soon
BACKOFF_CAP = 10.0  # s: a full disk freed is noticed within this


class Backoff:
    """Delays that double from `first` up to `cap`; `reset` after a success."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first


class Outage:
    """Logs `<what>_db_failed` once when a loop's writes start failing, `<what>_db_recovered`
    once when they work again: not a line per tick for as long as the disk stays full.
    `is_fault` is the store's test for a database fault (as opposed to a bug)."""

    def __init__(self, log: Log, what: str, is_fault: FaultTest) -> None:
        self.log = log
        self.what = what
        self.is_fault = is_fault
        self.since: float | None = None
        self.backoff = Backoff()

    def failed(self, exc: BaseException) -> float:
        """Note the failure; returns how long to wait before trying again."""
        loop = asyncio.get_running_loop()
        if self.since is None:
            self.since = loop.time()
            self.log.error(f"{self.what}_db_failed", error=describe(exc),
                           reason="retrying with backoff until the database takes it")
        return self.backoff.next()

    def succeeded(self) -> None:
        if self.since is not None:
            waited = asyncio.get_running_loop().time() - self.since
            self.log.info(f"{self.what}_db_recovered", after_seconds=round(waited, 1))
            self.since = None
        self.backoff.reset()


async def until_stored(write: Callable[[], Awaitable[T]], outage: Outage,
                       stop: asyncio.Event | None = None, give_up_after: float | None = None) -> T:
    """Await `write()` again and again while it fails with a database fault.

    Other errors go to the caller at once. With `give_up_after` (s), or once `stop` is set
    and a last try failed, the fault itself is raised: the caller says what is lost.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            result = await write()
        except Exception as exc:
            if not outage.is_fault(exc):
                raise
            delay = outage.failed(exc)
            late = give_up_after is not None and loop.time() - started + delay > give_up_after
            if late or (stop is not None and stop.is_set()):
                raise
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            continue
        outage.succeeded()
        return result
