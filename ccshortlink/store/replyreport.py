"""Read-only report SQL about customers' replies: their story for `trace`, counts for `stats`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ccshortlink.core.vocab import ReplyKind


def has_table(db: sqlite3.Connection, name: str) -> bool:
    """False in a SQLite file the daemon has not migrated yet (trace reads it as it is)."""
    if not isinstance(db, sqlite3.Connection):
        return True  # PostgreSQL's schema starts at the daemon's first start, migrated
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (name,)).fetchone() is not None


def _has_replies(db: sqlite3.Connection) -> bool:
    return has_table(db, "replies")  # not before schema 3


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
