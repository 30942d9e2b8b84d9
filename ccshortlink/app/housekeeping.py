"""Background upkeep: the watchdog, calls that never ended, retention, and WAL checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ccshortlink.app.ports import FaultTest, HousekeepingStore, Log
from ccshortlink.core.privacy import anonymise_number
from ccshortlink.core.retention import RetentionSchedule

HOUSEKEEPING_INTERVAL = 30.0
CHECKPOINT_INTERVAL = 1.0


class Housekeeping:
    """Two loops until `stop`: a slow tick (watchdog, expiry, retention) and checkpoints."""

    def __init__(self, *, store: HousekeepingStore, retention_days: float, log: Log,
                 clock: Callable[[], float], stop: asyncio.Event,
                 watchdog: Callable[[], object], watchdog_interval: float | None,
                 expire_calls: Callable[[], None],
                 on_db_state: Callable[[bool], None], is_error: FaultTest) -> None:
        self.store = store
        self.retention = RetentionSchedule(retention_days)
        self.log = log
        self.clock = clock
        self.stop = stop
        self.watchdog = watchdog
        self.interval = min(watchdog_interval or HOUSEKEEPING_INTERVAL, HOUSEKEEPING_INTERVAL)
        self.expire_calls = expire_calls  # reports the calls no Cdr or Hangup came for
        self.on_db_state = on_db_state
        self.is_error = is_error  # any error of the database: logged, tried again later

    async def run(self) -> None:
        while not self.stop.is_set():
            db_ok = await self.store.ping()
            self.on_db_state(db_ok)
            # Fed while the loop runs, even with the database failing: a restart frees no
            # disk and breaks no other process's lock, and it would lose the calls kept in
            # memory for the database (see Decider). /healthz says `db: failing` instead.
            self.watchdog()
            self.expire_calls()
            now = self.clock()
            if db_ok and self.retention.due(now):
                await self._apply_retention(now)
            await self._pause(self.interval)

    async def _apply_retention(self, now: float) -> None:
        retention = self.retention
        retention.done(now)  # a failing run is retried tomorrow, not every tick
        try:
            counts = await self.store.apply_retention(retention.cutoff(now), now,
                                                      anonymise_number)
        except Exception as exc:
            if not self.is_error(exc):
                raise
            self.log.error("retention_failed", error=repr(exc))
        else:
            self.log.info("retention_done", days=retention.days, **counts)

    async def checkpoints(self) -> None:
        """Keep the WAL short from a worker thread (see Store.take_over_checkpoints)."""
        await self.store.take_over_checkpoints()
        failing = False  # logged once when checkpoints start failing, once when they work
        while not self.stop.is_set():
            try:
                await self.store.checkpoint()
            except Exception as exc:
                if not self.is_error(exc):
                    raise
                if not failing:
                    self.log.warning("db_checkpoint_failed", error=repr(exc),
                                     reason="tried again every second, logged once")
                failing = True
            else:
                if failing:
                    self.log.info("db_checkpoint_recovered")
                failing = False
            await self._pause(CHECKPOINT_INTERVAL)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
