"""`trace` lines for call-backs (each step, its outcome) and their figure in `stats`."""

from __future__ import annotations

import sqlite3

from ccshortlink.store.replyreport import has_table

# (time column, trace kind) of each step a call-back row records, in the order they happen
_STEPS = (("placed_at", "callback_placed"), ("agent_answered_at", "callback_agent_answered"),
          ("customer_answered_at", "callback_connected"))


def callback_events(db: sqlite3.Connection, links_in: str, params: tuple[object, ...]
                    ) -> list[tuple[float, str, dict[str, object]]]:
    """(at, kind, facts) for every step of the call-backs of the links `links_in` names."""
    if not has_table(db, "callbacks"):  # not before schema 6
        return []
    lines: list[tuple[float, str, dict[str, object]]] = []
    for c in db.execute(f"SELECT c.*, l.code FROM callbacks c JOIN links l ON l.id = c.link_id"
                        f" WHERE c.link_id IN {links_in} ORDER BY c.id", params):
        facts: dict[str, object] = {"code": c["code"], "callback_id": c["id"],
                                    "agent": c["agent_id"], "pbx": c["pbx"]}
        if c["state"] == "refused":
            lines.append((c["requested_at"], "callback_refused", {
                **facts, "reason": c["reason"], "opens_at": c["opens_at"]}))
            continue
        lines.append((c["requested_at"], "callback_requested", facts))
        for column, kind in _STEPS:
            if c[column] is not None:
                lines.append((c[column], kind, facts))
        if c["ended_at"] is not None:
            lines.append((c["ended_at"], "callback_ended", {
                **facts, "outcome": c["state"], "reason": c["reason"],
                "talk_seconds": c["talk_seconds"]}))
    return lines


def callbacks_connected(db: sqlite3.Connection, since: float) -> list[sqlite3.Row]:
    """Per agent: call-backs asked for since `since` in which the customer answered."""
    if not has_table(db, "callbacks"):
        return []
    return db.execute(
        # The customer answered: whatever came after (done, or failed at a restart).
        "SELECT agent_id, SUM(CASE WHEN customer_answered_at IS NOT NULL THEN 1 END)"
        " AS callbacks_connected FROM callbacks WHERE requested_at >= ? GROUP BY agent_id",
        (since,)).fetchall()
