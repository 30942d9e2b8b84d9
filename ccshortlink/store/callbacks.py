"""SQL for call-backs: request (limits decided in the transaction), claim, steps, expiry."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccshortlink.core.callbacks import (
    ACTIVE,
    FINAL,
    IN_FLIGHT,
    CallbackRecord,
    Claim,
    Refusal,
)
from ccshortlink.core.vocab import CallbackState
from ccshortlink.store.base import StoreBase
from ccshortlink.store.rows import lock_customer

DAY = 86400.0
_COLUMNS = ("c.id, c.link_id, c.agent_id, c.pbx, c.state, c.reason, c.requested_at,"
            " c.opens_at, c.talk_seconds, l.customer_number")
_IN_FLIGHT = ",".join(f"'{s}'" for s in IN_FLIGHT)
_ACTIVE = ",".join(f"'{s}'" for s in ACTIVE)
_FINAL = ",".join(f"'{s}'" for s in FINAL)
# The time column each state stamps when a call-back reaches it.
_STAMPS = {CallbackState.CALLING_CUSTOMER: "agent_answered_at",
           CallbackState.CONNECTED: "customer_answered_at"}

# (agent_id, the link's pbx) → (the PBX that places it, why it is refused or None)
Judge = Callable[[str, str], tuple[str, Refusal | None]]


@dataclass(frozen=True)
class CallbackQueue:
    """What the dispatcher looks at: the waiting, oldest first, and the agents on one."""

    waiting: list[CallbackRecord]
    agents_in_flight: set[str]


class CallbackStore(StoreBase):
    """The `callbacks` table: one row per request, one column per step's time."""

    async def request_callback(self, code: str, now: float, *, per_link_per_day: int,
                               judge: Judge) -> CallbackRecord | None:
        """Record the customer's request and what became of it: waiting, or refused with
        why; the link's own call-back when one is already waiting or in progress; None for a
        code that is not a live link."""
        def work(db: sqlite3.Connection) -> CallbackRecord | None:
            link = db.execute(
                "SELECT id, agent_id, customer_number, pbx FROM links WHERE code = ?"
                " AND revoked_at IS NULL AND expires_at > ?", (code, now)).fetchone()
            if link is None:
                return None
            number = link["customer_number"]
            lock_customer(db, number)  # PostgreSQL: two taps at once make one call-back
            active = db.execute(
                f"SELECT {_COLUMNS} FROM callbacks c JOIN links l ON l.id = c.link_id"
                f" WHERE c.link_id = ? AND c.state IN ({_ACTIVE})"
                " ORDER BY c.id DESC LIMIT 1", (link["id"],)).fetchone()
            if active is not None:
                return _record(active, created=False)
            pbx, refusal = judge(link["agent_id"], link["pbx"])
            if db.execute("SELECT 1 FROM opt_outs WHERE customer_number = ?",
                          (number,)).fetchone() is not None:
                refusal = Refusal("opted_out")
            elif db.execute(
                    "SELECT COUNT(*) FROM callbacks WHERE link_id = ? AND requested_at > ?"
                    " AND state <> 'refused'", (link["id"], now - DAY)).fetchone()[0] \
                    >= per_link_per_day:
                refusal = Refusal("link_limit")
            state = CallbackState.WAITING if refusal is None else CallbackState.REFUSED
            row = db.execute(
                "INSERT INTO callbacks (link_id, agent_id, pbx, state, reason, requested_at,"
                " opens_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (link["id"], link["agent_id"], pbx, state,
                 refusal.reason if refusal else "", now,
                 refusal.opens_at if refusal else None,
                 now if refusal else None)).fetchone()
            return CallbackRecord(
                id=int(row[0]), link_id=int(link["id"]), agent_id=link["agent_id"], pbx=pbx,
                state=state, reason=refusal.reason if refusal else "", requested_at=now,
                customer_number=number, opens_at=refusal.opens_at if refusal else None)

        return await self._write(work)

    async def callback_queue(self) -> CallbackQueue:
        def work(db: sqlite3.Connection) -> CallbackQueue:
            waiting = db.execute(
                f"SELECT {_COLUMNS} FROM callbacks c JOIN links l ON l.id = c.link_id"
                " WHERE c.state = 'waiting' ORDER BY c.requested_at, c.id").fetchall()
            busy = db.execute(
                f"SELECT DISTINCT agent_id FROM callbacks WHERE state IN ({_IN_FLIGHT})")
            return CallbackQueue([_record(r) for r in waiting], {r[0] for r in busy})

        return await self._read(work)

    async def claim_callback(self, callback_id: int, now: float, *, owner: str,
                             lease_until: float) -> Claim:
        """Mark a waiting call-back placed, unless another daemon did, or its agent is on
        another call-back already: one at a time per agent, each placed once. What the
        request judged may have changed while it waited: a link revoked or expired, a
        number opted out → refused now, not placed."""
        def work(db: sqlite3.Connection) -> Claim:
            row = db.execute(
                "SELECT c.agent_id, l.customer_number, l.revoked_at IS NULL AND l.expires_at > ?"
                " AS live FROM callbacks c JOIN links l ON l.id = c.link_id WHERE c.id = ?"
                " AND c.state = 'waiting'", (now, callback_id)).fetchone()
            if row is None:
                return Claim(False)
            lock_customer(db, row["customer_number"])  # PostgreSQL: against an opt-out now
            refusal = Refusal("link_not_live") if not row["live"] else Refusal("opted_out") \
                if db.execute("SELECT 1 FROM opt_outs WHERE customer_number = ?",
                              (row["customer_number"],)).fetchone() is not None else None
            if refusal is not None:
                return Claim(False, refusal) if _refuse(db, callback_id, now, refusal) \
                    else Claim(False)
            lock_customer(db, "agent " + row["agent_id"])  # PostgreSQL: the agent's claims in turn
            claimed = db.execute(
                "UPDATE callbacks SET state = 'calling_agent', placed_at = ?, lease_owner = ?,"
                " lease_until = ?, opens_at = NULL WHERE id = ? AND state = 'waiting'"
                " AND NOT EXISTS"
                f" (SELECT 1 FROM callbacks o WHERE o.agent_id = ? AND o.state IN ({_IN_FLIGHT}))",
                (now, owner, lease_until, callback_id, row["agent_id"])).rowcount
            return Claim(bool(claimed))

        return await self._write(work)

    async def refuse_callback(self, callback_id: int, now: float, refusal: Refusal) -> bool:
        """A waiting call-back that may no longer be placed (its agent's hours are over):
        refused, with when they open again; False when it was no longer waiting."""
        return await self._write(lambda db: _refuse(db, callback_id, now, refusal))

    async def unclaim_callback(self, callback_id: int) -> None:
        """Placing failed before the PBX took it (its link went down): waiting again."""
        await self._write(lambda db: db.execute(
            "UPDATE callbacks SET state = 'waiting', placed_at = NULL, lease_owner = '',"
            " lease_until = NULL WHERE id = ? AND state = 'calling_agent'", (callback_id,)))

    async def requeue_callback(self, callback_id: int, now: float, *, reason: str,
                               not_before: float, max_wait_minutes: int) -> bool:
        """The agent's phone was busy: waiting again (placed no sooner than `not_before`)
        while it is within max_wait_minutes of the request; False otherwise."""
        return await self._write(lambda db: bool(db.execute(
            "UPDATE callbacks SET state = 'waiting', reason = ?, opens_at = ?, lease_owner = '',"
            " lease_until = NULL WHERE id = ? AND state = 'calling_agent' AND requested_at > ?",
            (reason, not_before, callback_id, now - max_wait_minutes * 60)).rowcount))

    async def record_callback_step(self, callback_id: int, state: CallbackState, now: float,
                                   *, reason: str = "", talk_seconds: int | None = None) -> bool:
        """A call-back moved on; False when it had ended already (nothing changes then)."""
        def work(db: sqlite3.Connection) -> bool:
            stamp = _STAMPS.get(state, "ended_at" if state in FINAL else "placed_at")
            return bool(db.execute(
                f"UPDATE callbacks SET state = ?, reason = ?, {stamp} = ?,"
                " talk_seconds = COALESCE(?, talk_seconds), lease_owner = CASE WHEN ? THEN ''"
                f" ELSE lease_owner END WHERE id = ? AND state NOT IN ({_FINAL})",
                (state, reason, now, talk_seconds, state in FINAL, callback_id)).rowcount)

        return await self._write(work)

    async def expire_callbacks(self, now: float, max_wait_minutes: int) -> list[CallbackRecord]:
        """Waiting ones that waited too long for a free agent: EXPIRED."""
        def work(db: sqlite3.Connection) -> list[CallbackRecord]:
            # RETURNING: only the rows this transaction changed (another daemon's expiry of
            # the same rows is not reported, logged and counted a second time).
            expired = [int(r[0]) for r in db.execute(
                "UPDATE callbacks SET state = 'expired', reason = 'max_wait', ended_at = ?"
                " WHERE state = 'waiting' AND requested_at <= ? RETURNING id",
                (now, now - max_wait_minutes * 60)).fetchall()]
            if not expired:
                return []
            marks = ",".join("?" * len(expired))
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM callbacks c JOIN links l ON l.id = c.link_id"
                f" WHERE c.id IN ({marks}) ORDER BY c.id", tuple(expired)).fetchall()
            return [_record(r) for r in rows]

        return await self._write(work)

    async def close_abandoned_callbacks(self, now: float, *, starting: bool) -> list[int]:
        """Call-backs in flight that no daemon follows any more: FAILED "daemon_restart".
        One daemon per SQLite file: at its start every one in flight was its own."""
        return await self._close_abandoned(now, float("inf") if starting else now)

    async def _close_abandoned(self, now: float, before: float) -> list[int]:
        def work(db: sqlite3.Connection) -> list[int]:
            rows = db.execute(
                "UPDATE callbacks SET state = 'failed', reason = 'daemon_restart', ended_at = ?,"
                f" lease_owner = '' WHERE state IN ({_IN_FLIGHT})"
                " AND COALESCE(lease_until, 0) < ? RETURNING id", (now, before)).fetchall()
            return sorted(int(r[0]) for r in rows)

        return await self._write(work)

    async def renew_callback_leases(self, owner: str, until: float) -> None:
        await self._write(lambda db: db.execute(
            f"UPDATE callbacks SET lease_until = ? WHERE lease_owner = ? AND state IN"
            f" ({_IN_FLIGHT})", (until, owner)))

    async def latest_callback(self, code: str) -> CallbackRecord | None:
        row = await self._one(
            f"SELECT {_COLUMNS} FROM callbacks c JOIN links l ON l.id = c.link_id"
            " WHERE l.code = ? ORDER BY c.id DESC LIMIT 1", (code,))
        return None if row is None else _record(row)

    async def preferred_agent_of(self, customer_number: str,
                                 now: float) -> tuple[str, str] | None:
        """(agent id, the link's PBX) of the number's latest live link; None when it has
        none or opted out."""
        row = await self._one(
            "SELECT l.agent_id, l.pbx FROM links l WHERE l.customer_number = ?"
            " AND l.revoked_at IS NULL AND l.expires_at > ? AND NOT EXISTS"
            " (SELECT 1 FROM opt_outs o WHERE o.customer_number = l.customer_number)"
            " ORDER BY l.created_at DESC, l.id DESC LIMIT 1", (customer_number, now))
        return None if row is None else (str(row[0]), str(row[1]))


def _refuse(db: sqlite3.Connection, callback_id: int, now: float, refusal: Refusal) -> bool:
    return bool(db.execute(
        "UPDATE callbacks SET state = 'refused', reason = ?, opens_at = ?, ended_at = ?"
        " WHERE id = ? AND state = 'waiting'",
        (refusal.reason, refusal.opens_at, now, callback_id)).rowcount)


def _record(row: Any, *, created: bool = True) -> CallbackRecord:
    return CallbackRecord(
        id=int(row["id"]), link_id=int(row["link_id"]), agent_id=row["agent_id"],
        pbx=row["pbx"], state=CallbackState(row["state"]), reason=row["reason"],
        requested_at=float(row["requested_at"]), customer_number=row["customer_number"],
        opens_at=row["opens_at"], talk_seconds=row["talk_seconds"], created=created)
