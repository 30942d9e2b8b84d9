"""Card visits held in memory and written to the store in batches by one background task."""

from __future__ import annotations

import asyncio
import contextlib

from ccshortlink.app.ports import Log, VisitStore
from ccshortlink.core.describe import describe

FLUSH_INTERVAL = 0.1  # seconds: at most one visits transaction this often
FLUSH_ROWS = 1000  # ...unless this many visits are waiting
MAX_PENDING = 100_000  # beyond this (the database is stuck) new visits are dropped, not kept
RETRY_AFTER = 1.0  # seconds before writing again after the database refused a batch
STOP_TIMEOUT = 10.0


# One counted visit as `Store.record_visits` takes it: (code, kind, client, user_agent, at),
# kind being open | call | vcard and client the anonymised address. A plain tuple: building
# a named one costs more than the rest of counting a visit.
Visit = tuple[str, str, str, str, float]


class VisitBuffer:
    """Counts visits without a database round trip per request.

    `add` only appends to a list; the writer task started by `start` commits what has
    gathered in one transaction, at most every `interval` seconds (sooner when `max_rows`
    are waiting). A quiet server writes a visit as soon as it arrives; a busy one writes
    a few hundred per transaction. `stop` (run by the web app's cleanup, so a graceful
    shutdown) writes everything still pending. A crash or power loss can lose at most the
    visits of the last flush interval (~0.1 s; longer only while the database refuses
    writes); they are counts, not messages to anyone.
    """

    def __init__(self, store: VisitStore, log: Log, *, interval: float = FLUSH_INTERVAL,
                 max_rows: int = FLUSH_ROWS, max_pending: int = MAX_PENDING) -> None:
        self._store = store
        self._log = log
        self.interval = interval
        self.max_rows = max_rows
        self.max_pending = max_pending
        self._pending: list[Visit] = []
        self._dropped = 0
        self._wake = asyncio.Event()  # something is pending
        self._full = asyncio.Event()  # max_rows are pending: don't wait out the interval
        self._writing = asyncio.Lock()  # flush() waits for a batch already on its way
        self._stopping = False
        self._failing = False  # logged once when writes start failing, once when they work
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, code: str, kind: str, client: str, user_agent: str, at: float) -> None:
        """Queue one visit; never waits."""
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
            return
        self._pending.append((code, kind, client, user_agent[:200], at))
        if not self._wake.is_set():
            self._wake.set()
        if len(self._pending) >= self.max_rows and not self._full.is_set():
            self._full.set()

    async def flush(self) -> int:
        """Write every pending visit now (after any batch already on its way).

        Raises when the store refuses the batch: kept for a retry when the database is
        only busy or locked, dropped (and logged) when it cannot be written at all.
        """
        async with self._writing:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                written = await self._store.record_visits(batch)
            except Exception as exc:
                # Busy, locked, disk full: keep them for the next try. Anything else (the
                # store closed, a batch it cannot take) would fail again: drop them.
                retry = self._store.is_transient(exc)
                kept = batch[:max(self.max_pending - len(self._pending), 0)] if retry else []
                self._pending[:0] = kept
                if not self._failing:  # once per outage, not once per batch
                    self._failing = True
                    self._log.error("visits_flush_failed", visits=len(batch),
                                    dropped=len(batch) - len(kept),
                                    error=describe(exc))
                else:
                    self._dropped += len(batch) - len(kept)
                raise
        if self._failing:
            self._failing = False
            self._log.info("visits_flush_recovered", visits=written)
        if self._dropped:
            self._log.warning("visits_dropped", visits=self._dropped, reason="backlog")
            self._dropped = 0
        return written

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_write = loop.time()
        while not self._stopping:
            await self._wake.wait()
            delay = next_write - loop.time()
            if delay > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), delay)
            self._wake.clear()
            self._full.clear()
            # The interval runs from the start of a write: a slow disk does not stretch it.
            next_write = loop.time() + self.interval
            try:
                await self.flush()
            except Exception:  # logged by flush(); a busy database gets the batch again later
                next_write = loop.time() + RETRY_AFTER
                if self._pending:
                    self._wake.set()

    def start(self) -> None:
        """Start the writer task (the web app does this on startup)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="visit-writer")

    async def stop(self) -> None:
        """Let the writer finish, then write whatever is still pending."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        self._full.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, STOP_TIMEOUT)
            except TimeoutError:
                self._log.error("visits_writer_stuck", timeout=STOP_TIMEOUT)
            except Exception as exc:  # a bug in the writer must not stop the shutdown
                self._log.error("visits_writer_failed", error=describe(exc))
        with contextlib.suppress(Exception):  # flush() logged the failure itself
            await self.flush()
        lost = len(self._pending) + self._dropped
        if lost:
            self._log.error("visits_lost", visits=lost, reason="not written before stop")
            self._pending, self._dropped = [], 0
