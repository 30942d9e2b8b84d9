"""Retention on PostgreSQL: what store/retention.py does, numbers masked in Python."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ccshortlink.store.pg.base import PgBase

_SETTLED = "status NOT IN ('queued', 'submitting')"
# (table, column, which rows): the numbers to mask, as store/retention.py picks them.
_NUMBERS = (
    ("links", "customer_number",
     "created_at < ? AND (expires_at <= ? OR revoked_at IS NOT NULL)", "links_anonymised"),
    ("decisions", "customer_number", "decided_at < ?", "decisions_anonymised"),
    ("sms", "destination", f"created_at < ? AND {_SETTLED}", "sms_anonymised"),
)


class PgRetention(PgBase):
    """SQLite calls the mask as an SQL function; here each distinct number is masked once
    in Python and written back through one UPDATE per table."""

    async def apply_retention(self, cutoff: float, now: float,
                              anonymise: Callable[[str], str]) -> dict[str, int]:
        def work(db: sqlite3.Connection) -> dict[str, int]:
            counts = {
                "visits_deleted": db.execute("DELETE FROM visits WHERE at < ?",
                                             (cutoff,)).rowcount,
                "sms_events_deleted": db.execute("DELETE FROM sms_events WHERE at < ?",
                                                 (cutoff,)).rowcount,
                "sms_parts_deleted": db.execute(
                    "DELETE FROM sms_parts WHERE sms_id IN (SELECT id FROM sms"
                    f" WHERE created_at < ? AND {_SETTLED})", (cutoff,)).rowcount}
            for table, column, where, name in _NUMBERS:
                params = (cutoff, now) if table == "links" else (cutoff,)
                counts[name] = _mask(db, table, column, where, params, anonymise)
            counts["replies_anonymised"] = _mask(
                db, "replies", "customer_number", "received_at < ?", (cutoff,), anonymise,
                also="text = ''", also_needed="text != ''")
            return counts

        return await self._write(work)


def _mask(db: sqlite3.Connection, table: str, column: str, where: str,
          params: tuple[float, ...], anonymise: Callable[[str], str], *, also: str = "",
          also_needed: str = "") -> int:
    numbers = [r[0] for r in db.execute(
        f"SELECT DISTINCT {column} FROM {table} WHERE {where}", params)]
    masked = {n: anonymise(n) for n in numbers}
    changed = [n for n, m in masked.items() if m != n]
    if also_needed:  # replies: the text goes even when the number was masked before
        changed = numbers
    if not changed:
        return 0
    setting = f"{column} = m.masked" + (f", {also}" if also else "")
    need = f"t.{column} != m.masked" + (f" OR t.{also_needed}" if also_needed else "")
    return db.execute(
        f"UPDATE {table} t SET {setting} FROM (SELECT unnest(?::text[]) AS raw,"
        f" unnest(?::text[]) AS masked) m WHERE t.{column} = m.raw AND ({need})"
        f" AND {where}",
        (changed, [masked[n] for n in changed], *params)).rowcount
