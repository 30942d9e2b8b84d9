"""The gauges /metrics reads from the store when Prometheus scrapes: outbox and links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ccshortlink.ops.metrics import Metrics

LINKS_EVERY = 300.0  # s between counts of the links table (a scan): it changes slowly


class GaugeSource(Protocol):
    async def sms_status_counts(self) -> dict[str, int]: ...
    async def oldest_due_at(self, now: float) -> float | None: ...
    async def link_state_counts(self, now: float) -> dict[str, int]: ...


class StoreGauges:
    """Sets the outbox gauges on every scrape, and the links gauge every LINKS_EVERY s."""

    def __init__(self, store: GaugeSource, metrics: Metrics, clock: Callable[[], float]) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._links_at: float | None = None

    async def refresh(self) -> None:
        now = self._clock()
        self._metrics.set_outbox(await self._store.sms_status_counts())
        self._metrics.set_outbox_age(await self._store.oldest_due_at(now), now)
        if self._links_at is None or now - self._links_at >= LINKS_EVERY:
            self._links_at = now
            self._metrics.set_links(await self._store.link_state_counts(now))
