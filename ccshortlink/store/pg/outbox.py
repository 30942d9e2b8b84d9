"""The outbox shared by several daemons: claims with FOR UPDATE SKIP LOCKED and a lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import time
from functools import partial

from ccshortlink.core.records import OutboxSms
from ccshortlink.store.outbox import ClaimedSms, _next_due
from ccshortlink.store.pg.base import PgBase


class PgOutbox(PgBase):
    """Each daemon claims due SMS no other daemon holds, for `lease` seconds at a time.

    A daemon renews the leases of the SMS it holds (submitting, or waiting in its SMSC link
    while the SMSC is down) every third of a lease; one that dies stops renewing, and once
    a lease has run out any daemon's next claim takes that SMS over. One that was only cut
    off may still have submitted it: a duplicate, bounded by its window, and the takeover
    is in the SMS's events (`trace`).
    """

    _owner = ""
    _renewer: asyncio.Task[None] | None = None

    async def _started(self) -> None:
        await super()._started()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._renewer = asyncio.create_task(self._renew_leases(), name="pg-lease-renewal")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await super().close()

    async def _renew_leases(self) -> None:
        lease = self.database.lease
        while True:
            await asyncio.sleep(lease / 3)
            # The store's own clock: leases are wall time, shared by every daemon.
            with contextlib.suppress(Exception):  # a fault: the next round tries again
                await self._write(partial(_renew, self._owner, time.time() + lease))

    async def recover_interrupted(self, now: float) -> int:
        """Nothing at start: other daemons may be submitting; a dead one's leases run out."""
        return 0

    async def claim_due_sms(self, now: float, limit: int) -> ClaimedSms:
        lease_until = now + self.database.lease
        owner = self._owner

        def work(db: sqlite3.Connection) -> ClaimedSms:
            if limit <= 0:
                return ClaimedSms(sms=[], next_due_at=_next_due(db))
            # One statement, one round trip: claim, parts, and when the next SMS left in
            # the queue falls due (a row even when nothing was claimed).
            rows = db.execute(_CLAIM, (now, now, limit, now, owner, lease_until)).fetchall()
            claimed = [r for r in rows if r["id"] is not None]
            taken_over = [(int(r["id"]), now, f"the lease of {r['was_owner']} ran out;"
                           f" taken over by {owner}")
                          for r in claimed if r["was"] == "submitting"]
            if taken_over:
                db.executemany("INSERT INTO sms_events (sms_id, at, kind, detail)"
                               " VALUES (?, ?, 'requeued', ?)", taken_over)
            claimed.sort(key=lambda r: (r["not_before"], r["id"]))
            return ClaimedSms(sms=[OutboxSms(
                id=r["id"], destination=r["destination"], data_coding=r["data_coding"],
                esm_class=r["esm_class"], parts=tuple(bytes(p) for p in r["parts"]),
                attempts=r["attempts"], expires_at=r["expires_at"], code=r["code"])
                for r in claimed], next_due_at=rows[0]["next_due"])

        return await self._write(work)


# Due SMS no other daemon holds (queued, or submitting with a lease run out), marked
# submitting under this daemon's lease; the statement sees the table as it was before its own
# update, so the next due time leaves out what it claims.
_CLAIM = (
    "WITH q AS (SELECT id, status, lease_owner, link_id FROM sms"
    " WHERE (status = 'queued' AND not_before <= ?) OR (status = 'submitting'"
    " AND lease_until < ?) ORDER BY not_before, id LIMIT ? FOR UPDATE SKIP LOCKED),"
    " c AS (UPDATE sms s SET status = 'submitting', attempts = s.attempts + 1,"
    " updated_at = ?, lease_owner = ?, lease_until = ?"
    " FROM q LEFT JOIN links l ON l.id = q.link_id WHERE s.id = q.id"
    " RETURNING s.id, s.destination, s.data_coding, s.esm_class, s.attempts, s.expires_at,"
    " s.not_before, COALESCE(l.code, '') AS code, q.status AS was, q.lease_owner AS was_owner,"
    " ARRAY(SELECT p.payload FROM sms_parts p WHERE p.sms_id = s.id ORDER BY p.part_no)"
    " AS parts)"
    " SELECT c.*, (SELECT MIN(not_before) FROM sms WHERE status = 'queued'"
    " AND id NOT IN (SELECT id FROM q)) AS next_due FROM (SELECT 1) AS one LEFT JOIN c ON true")


def _renew(owner: str, until: float, db: sqlite3.Connection) -> None:
    db.execute("UPDATE sms SET lease_until = ? WHERE lease_owner = ? AND status = 'submitting'",
               (until, owner))
