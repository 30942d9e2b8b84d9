"""SQL for operators' link admin: list, look up, revoke, extend; each change recorded."""

from __future__ import annotations

import sqlite3

from ccshortlink.core.linkadmin import (
    ChangeKind,
    LinkChange,
    LinkEntry,
    Revoked,
    extended_expiry,
)
from ccshortlink.core.links import link_status
from ccshortlink.store.base import StoreBase
from ccshortlink.store.replyreport import has_table
from ccshortlink.store.rows import expire_queued

# Visit counts, the rating and the newest SMS's status, per link, in one pass.
_ENTRY = (
    "SELECT l.*,"
    " (SELECT COUNT(*) FROM visits v WHERE v.link_id = l.id AND v.kind = 'open') AS opens,"
    " (SELECT COUNT(*) FROM visits v WHERE v.link_id = l.id AND v.kind = 'call') AS call_taps,"
    " (SELECT stars FROM ratings r WHERE r.link_id = l.id) AS rating,"
    " (SELECT status FROM sms s WHERE s.link_id = l.id ORDER BY s.id DESC LIMIT 1)"
    " AS sms_status FROM links l")


class LinkAdminStore(StoreBase):
    """What `ccshortlink links` and the links API read and change."""

    async def find_links(self, *, now: float, agent_id: str | None = None,
                         customer_number: str | None = None, include_all: bool = False,
                         limit: int = 100) -> list[LinkEntry]:
        """Newest first; only live links unless `include_all`."""
        where: list[str] = []
        params: list[str | float] = []
        if agent_id is not None:
            where.append("l.agent_id = ?")
            params.append(agent_id)
        if customer_number is not None:
            where.append("l.customer_number = ?")
            params.append(customer_number)
        if not include_all:
            where.append("l.revoked_at IS NULL AND l.expires_at > ?")
            params.append(now)
        sql = (_ENTRY + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY l.created_at DESC, l.id DESC LIMIT ?")

        def work(db: sqlite3.Connection) -> list[LinkEntry]:
            return [_entry(row, now) for row in db.execute(sql, (*params, limit))]

        return await self._read(work)

    async def link_entry(self, code: str, now: float) -> LinkEntry | None:
        """The link with its changes, oldest first; None for an unknown code."""
        return await self._read(lambda db: _entry_with_changes(db, code, now))

    async def revoke_code(self, code: str, *, by: str, now: float) -> Revoked | None:
        """Revoke one link (again is harmless); None for an unknown code."""
        def work(db: sqlite3.Connection) -> Revoked | None:
            row = db.execute("SELECT id, revoked_at FROM links WHERE code = ?",
                             (code,)).fetchone()
            if row is None:
                return None
            cancelled = 0
            if row["revoked_at"] is None:
                cancelled = _revoke(db, int(row["id"]), by, now)
            entry = _entry_with_changes(db, code, now)
            assert entry is not None
            return Revoked(entry, row["revoked_at"] is None, cancelled)

        return await self._write(work)

    async def revoke_number(self, customer_number: str, *, by: str,
                            now: float) -> list[Revoked]:
        """Revoke every live link of the number, in one transaction."""
        def work(db: sqlite3.Connection) -> list[Revoked]:
            rows = db.execute(
                "SELECT id, code FROM links WHERE customer_number = ? AND revoked_at IS NULL"
                " AND expires_at > ? ORDER BY id", (customer_number, now)).fetchall()
            done = []
            for row in rows:
                cancelled = _revoke(db, int(row["id"]), by, now)
                entry = _entry_with_changes(db, row["code"], now)
                assert entry is not None
                done.append(Revoked(entry, True, cancelled))
            return done

        return await self._write(work)

    async def extend_code(self, code: str, days: int, *, by: str,
                          now: float) -> LinkEntry | None:
        """`days` more for a link that is not revoked; the link as it is now (a revoked one
        comes back unchanged), or None for an unknown code."""
        def work(db: sqlite3.Connection) -> LinkEntry | None:
            row = db.execute("SELECT id, expires_at, revoked_at FROM links WHERE code = ?",
                             (code,)).fetchone()
            if row is not None and row["revoked_at"] is None:
                new = extended_expiry(row["expires_at"], now, days)
                db.execute("UPDATE links SET expires_at = ? WHERE id = ?", (new, row["id"]))
                db.execute(
                    "INSERT INTO link_changes (link_id, at, kind, source, expires_at,"
                    " previous_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (row["id"], now, ChangeKind.EXTENDED, by, new, row["expires_at"]))
            return _entry_with_changes(db, code, now)

        return await self._write(work)


def _revoke(db: sqlite3.Connection, link_id: int, by: str, now: float) -> int:
    """Mark the link revoked, record who did it, and cancel its SMS not yet sent.

    A queued SMS (a deferred one, say) would only bring the customer a dead link; one already
    being submitted is left to finish. Returns how many were cancelled.
    """
    db.execute("UPDATE links SET revoked_at = ? WHERE id = ?", (now, link_id))
    db.execute("INSERT INTO link_changes (link_id, at, kind, source) VALUES (?, ?, ?, ?)",
               (link_id, now, ChangeKind.REVOKED, by))
    return expire_queued(db, [int(r[0]) for r in db.execute(
        "SELECT id FROM sms WHERE link_id = ? AND status = 'queued'", (link_id,))],
        "link revoked", by, now)


def _entry(row: sqlite3.Row, now: float,
           changes: tuple[LinkChange, ...] = ()) -> LinkEntry:
    return LinkEntry(
        code=row["code"], agent_id=row["agent_id"], customer_number=row["customer_number"],
        linkedid=row["linkedid"], created_at=row["created_at"], expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        status=link_status(row["expires_at"], row["revoked_at"], now),
        opens=int(row["opens"]), call_taps=int(row["call_taps"]), rating=row["rating"],
        sms_status=row["sms_status"] or "", changes=changes)


def _entry_with_changes(db: sqlite3.Connection, code: str, now: float) -> LinkEntry | None:
    row = db.execute(_ENTRY + " WHERE l.code = ?", (code,)).fetchone()
    if row is None:
        return None
    changes = tuple(
        LinkChange(at=c["at"], kind=ChangeKind(c["kind"]), by=c["source"],
                   expires_at=c["expires_at"], previous_expires_at=c["previous_expires_at"])
        for c in db.execute("SELECT * FROM link_changes WHERE link_id = ? ORDER BY at, id",
                            (row["id"],)))
    return _entry(row, now, changes)


def trace_changes(db: sqlite3.Connection, links_in: str, params: tuple[object, ...]
                  ) -> tuple[list[tuple[float, str, dict[str, object]]], set[int]]:
    """`trace` lines for operators' changes to the links `links_in` names (at, kind, facts),
    and the ids of the links whose revocation they already tell."""
    lines: list[tuple[float, str, dict[str, object]]] = []
    told: set[int] = set()
    if not has_table(db, "link_changes"):  # not before schema 4
        return lines, told
    for c in db.execute(f"SELECT c.*, l.code FROM link_changes c JOIN links l ON l.id = c.link_id"
                        f" WHERE c.link_id IN {links_in} ORDER BY c.id", params):
        facts: dict[str, object] = {"code": c["code"], "by": c["source"]}
        if c["kind"] == ChangeKind.EXTENDED:
            facts |= {"expires_at": c["expires_at"],
                      "previous_expires_at": c["previous_expires_at"]}
        else:
            told.add(int(c["link_id"]))
        lines.append((c["at"], f"link_{c['kind']}", facts))
    return lines, told
