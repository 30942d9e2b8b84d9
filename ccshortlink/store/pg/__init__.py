"""The PostgreSQL store: the SQLite store's use cases, shared, over a psycopg pool."""

from __future__ import annotations

import sqlite3

from ccshortlink.store.callbacks import CallbackStore
from ccshortlink.store.card import CardStore
from ccshortlink.store.gauges import LINK_STATES, GaugeStore
from ccshortlink.store.linkadmin import LinkAdminStore
from ccshortlink.store.links import LinkStore
from ccshortlink.store.outbox import OutboxStore
from ccshortlink.store.pg.decide import PgDecisions
from ccshortlink.store.pg.outbox import PgOutbox
from ccshortlink.store.pg.receipts import PgReceipts
from ccshortlink.store.pg.retention import PgRetention
from ccshortlink.store.replies import ReplyRows
from ccshortlink.store.retention import RetentionStore


class PgStore(PgDecisions, PgReceipts, PgOutbox, PgRetention, LinkStore, OutboxStore,
              CardStore, RetentionStore, LinkAdminStore, GaugeStore, ReplyRows, CallbackStore):
    """Every use case of store.Store; PgBase runs them (pool, transactions, retries), and
    the decisions' and receipts' batches, the outbox's claim and retention are
    PostgreSQL's own."""

    async def link_state_counts(self, now: float) -> dict[str, int]:
        def work(db: sqlite3.Connection) -> dict[str, int]:
            live, expired, revoked = db.execute(LINK_STATES, (now, now)).fetchone()
            return {"live": int(live), "expired": int(expired), "revoked": int(revoked)}

        return await self._read(work)

    async def close_abandoned_callbacks(self, now: float, *, starting: bool) -> list[int]:
        """Only those whose lease ran out: the others are other daemons' calls."""
        return await self._close_abandoned(now, now)


__all__ = ["PgStore"]
