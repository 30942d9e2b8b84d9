"""Read-only report SQL about customers' replies: their story for `trace`, counts for `stats`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ccshortlink.core.vocab import ReplyKind


def _has_replies(db: sqlite3.Connection) -> bool:
    """A database the daemon has not migrated yet (schema 2) has no replies to show."""
    if not isinstance(db, sqlite3.Connection):
        return True  # PostgreSQL's schema starts at the daemon's first start, migrated
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'replies'"
                      ).fetchone() is not None


def reply_events(db: sqlite3.Connection, where: str, params: Sequence[object]
                 ) -> list[tuple[float, str, dict[str, Any]]]:
    """(at, "reply", facts) for each reply from the numbers `where` names, oldest first;
    sorted in before the other events, a reply comes before what it caused at its instant."""
    if not _has_replies(db):
        return []
    rows = db.execute(f"SELECT * FROM replies WHERE customer_number IN {where} ORDER BY id",
                      params).fetchall()
    return [(r["received_at"], "reply", {
        "customer_number": r["customer_number"], "text": r["text"], "reply_kind": r["kind"],
        "sms_id": r["sms_id"], "not_answered": r["answer"]}) for r in rows]


def reply_counts(db: sqlite3.Connection, since: float) -> dict[str, int]:
    """Replies received since `since` by what they asked for, and how many were answered."""
    counts = {kind.value: 0 for kind in ReplyKind} | {"answered": 0}
    if not _has_replies(db):
        return counts
    for kind, count, answered in db.execute(
            "SELECT kind, COUNT(*), COUNT(sms_id) FROM replies WHERE received_at >= ?"
            " GROUP BY kind", (since,)):
        counts[str(kind)] = int(count)
        counts["answered"] += int(answered)
    return counts
