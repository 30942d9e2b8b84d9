"""SQL behind the gauges read at scrape time: the outbox's oldest due SMS, links by state."""

from __future__ import annotations

import asyncio
import sqlite3

from ccshortlink.store.base import StoreBase, _on_its_thread, _outlast_cancellation

# Portable SQL (CASE, not SQLite's SUM of a comparison): the PostgreSQL store runs it too.
LINK_STATES = (
    "SELECT COALESCE(SUM(CASE WHEN revoked_at IS NULL AND expires_at > ? THEN 1 END), 0),"
    " COALESCE(SUM(CASE WHEN revoked_at IS NULL AND expires_at <= ? THEN 1 END), 0),"
    " COALESCE(SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 END), 0) FROM links")


class GaugeStore(StoreBase):
    """What /metrics asks the database."""

    async def oldest_due_at(self, now: float) -> float | None:
        """Since when the longest-waiting SMS has been due and not yet sent; None: none.

        Queued SMS past their `not_before`, and those handed to the SMSC link and not yet
        answered (while the SMSC is down they wait there): an SMS held for quiet hours or
        backing off before a retry is not due yet.
        """
        row = await self._one(
            "SELECT MIN(not_before) FROM sms WHERE status IN ('queued', 'submitting')"
            " AND not_before <= ?", (now,))
        return None if row is None or row[0] is None else float(row[0])

    async def link_state_counts(self, now: float) -> dict[str, int]:
        """Links by state (live, expired, revoked), as core.links.link_status judges them.

        A scan of every link (retention keeps them, anonymised): run on the connection's
        own thread so the loop stays free; the caller asks only every few minutes.
        """
        def work(db: sqlite3.Connection) -> dict[str, int]:
            live, expired, revoked = db.execute(
                LINK_STATES, (now, now)).fetchone()
            return {"live": int(live), "expired": int(expired), "revoked": int(revoked)}

        async with self._lock:  # no other use case on the connection meanwhile
            return await _outlast_cancellation(asyncio.ensure_future(
                _on_its_thread(self._db, work)))
