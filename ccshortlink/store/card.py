"""SQL for the card page: link views, visits, ratings, live figures."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ccshortlink.core.links import link_status
from ccshortlink.core.records import AgentLiveStats, LinkView, RatingView
from ccshortlink.store.base import StoreBase


class CardStore(StoreBase):
    """What the card page reads and writes."""

    # --- the card page -------------------------------------------------------------------

    async def link_for_page(self, code: str, now: float) -> LinkView | None:
        row = await self._one(
            "SELECT l.code, l.agent_id, l.created_at, l.expires_at, l.revoked_at,"
            " l.customer_region, r.stars, r.comment FROM links l"
            " LEFT JOIN ratings r ON r.link_id = l.id WHERE l.code = ?", (code,))
        if row is None:
            return None
        status = link_status(row["expires_at"], row["revoked_at"], now)
        return LinkView(code=row["code"], agent_id=row["agent_id"], status=status,
                        created_at=row["created_at"], expires_at=row["expires_at"],
                        customer_region=row["customer_region"], rating=row["stars"],
                        comment=row["comment"] or "")

    async def record_visit(self, code: str, kind: str, client: str, user_agent: str,
                           now: float) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO visits (link_id, kind, client, user_agent, at)"
            " SELECT id, ?, ?, ?, ? FROM links WHERE code = ?",
            (kind, client, user_agent[:200], now, code)))

    async def rate_link(self, code: str, stars: int, comment: str, now: float) -> None:
        if not 1 <= stars <= 5:
            raise ValueError("stars must be 1..5")
        await self._write(lambda db: db.execute(
            "INSERT INTO ratings (link_id, agent_id, stars, comment, created_at, updated_at)"
            " SELECT id, agent_id, ?, ?, ?, ? FROM links WHERE code = ?"
            " ON CONFLICT (link_id) DO UPDATE SET stars = excluded.stars,"
            " comment = excluded.comment, updated_at = excluded.updated_at",
            (stars, comment, now, now, code)))

    async def agent_live_stats(self, agent_id: str) -> AgentLiveStats:
        def work(db: sqlite3.Connection) -> AgentLiveStats:
            calls = db.execute(
                "SELECT COUNT(DISTINCT linkedid), COUNT(DISTINCT customer_number) FROM decisions"
                " WHERE agent_id = ? AND trigger IN ('hangup', 'agent_complete')",
                (agent_id,)).fetchone()
            ratings = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(stars), 0) FROM ratings WHERE agent_id = ?",
                (agent_id,)).fetchone()
            return AgentLiveStats(calls_handled=int(calls[0]), customers_served=int(calls[1]),
                                  rating_count=int(ratings[0]), rating_sum=int(ratings[1]))

        return await self._read(work)

    async def recent_ratings(self, agent_id: str, limit: int = 5) -> list[RatingView]:
        rows = await self._all(
            "SELECT stars, comment, created_at FROM ratings WHERE agent_id = ? AND comment != ''"
            " ORDER BY updated_at DESC LIMIT ?", (agent_id, limit))
        return [RatingView(stars=r[0], comment=r[1], created_at=r[2]) for r in rows]

    # --- visits in batches ---------------------------------------------------------------

    async def record_visits(self, visits: Sequence[tuple[str, str, str, str, float]]) -> int:
        """Many visits in one transaction, each (code, kind, client, user_agent, at).

        What `record_visit` does row by row; visits to codes that no longer exist are
        skipped. Returns the number of rows written. Up to 1000 visits go in as one
        multi-row INSERT: executemany takes the GIL back after every row, and beside a busy
        event loop each of those waits out the interpreter's switch interval (600 rows:
        ~4 ms alone, over a second next to the card server; one statement: ~3 ms either way).
        """
        rows: list[str | float] = []
        for n, (code, kind, client, user_agent, at) in enumerate(visits):
            browser = user_agent[:200]
            if not browser.isascii():  # undecodable header bytes arrive as lone surrogates
                browser = browser.encode("utf-8", "replace").decode("utf-8")
            rows += (code, kind, client, browser, at, n)
        chunk = 6 * 1000  # parameters per statement; SQLite >= 3.32 allows 32766

        def work(db: sqlite3.Connection) -> int:
            written = 0
            for start in range(0, len(rows), chunk):
                params = rows[start:start + chunk]
                cursor = db.execute(
                    "INSERT INTO visits (link_id, kind, client, user_agent, at)"
                    " SELECT l.id, v.column2, v.column3, v.column4, v.column5 FROM (VALUES "
                    + ",".join(["(?, ?, ?, ?, ?, ?)"] * (len(params) // 6))
                    # CROSS JOIN keeps the batch's order: one probe of links.code per visit;
                    # PostgreSQL's join does not, hence the batch's own numbers (column6).
                    + ") AS v CROSS JOIN links AS l ON l.code = v.column1 ORDER BY v.column6",
                    params)
                written += max(cursor.rowcount, 0)
            return written

        return await self._write(work) if rows else 0
