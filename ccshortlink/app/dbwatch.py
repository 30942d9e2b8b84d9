"""Is the database taking writes? A probe each second; `db_unavailable` / `db_available` once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ccshortlink.app.ports import HealthProbe, Log

PROBE_INTERVAL = 1.0  # s between empty write transactions
# s a write may wait for another process's lock before the database counts as failing: a
# backup or an admin's quick UPDATE holds it for less; an abandoned sqlite3 shell, for ever.
WAIT_LIMIT = 3.0


class DbWatch:
    """Says why the database fails, or None; logs the start and the end of each outage."""

    def __init__(self, store: HealthProbe, log: Log,
                 decisions_failing: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self.log = log
        self.decisions_failing = decisions_failing
        self.reason: str | None = None  # as last logged

    def trouble(self) -> str | None:
        """Why writes fail or wait, or None while the database takes them."""
        waited = self.store.lock_wait()
        if waited > WAIT_LIMIT:
            return f"a write has waited {waited:.0f} s for another process's lock"
        if self.store.write_failure is not None:
            return self.store.write_failure
        if self.decisions_failing():
            return "decisions are waiting for the database"
        return None

    def check(self) -> str | None:
        """`trouble()`, logged when an outage starts and when it ends."""
        reason = self.trouble()
        if reason is not None and self.reason is None:
            self.log.error("db_unavailable", reason=reason, path=str(self.store.path))
        elif reason is None and self.reason is not None:
            self.log.info("db_available", path=str(self.store.path))
        self.reason = reason
        return reason

    async def run(self, stop: asyncio.Event) -> None:
        """Probe and check until `stop`: a lock held elsewhere shows even with no traffic."""
        probe: asyncio.Task[None] | None = None
        while not stop.is_set():
            # The probe waits out a lock for up to the store's BUSY_WAIT: it runs beside the
            # checks, so the wait itself is measured while it lasts.
            if probe is None or probe.done():
                if probe is not None:
                    _settle(probe)
                probe = asyncio.create_task(self.store.probe_write(), name="db-probe")
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=PROBE_INTERVAL)
        if probe is not None:
            probe.cancel()  # safe: a use case is only ever cancelled between its tries
            await asyncio.wait([probe])
            _settle(probe)


def _settle(probe: asyncio.Task[None]) -> None:
    """Collect a finished probe: its database fault is already noted by the store, and any
    other error (the store closing at shutdown) is not the health check's to raise."""
    if not probe.cancelled():
        probe.exception()
