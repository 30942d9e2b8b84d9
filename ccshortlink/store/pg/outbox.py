"""The outbox shared by several daemons: claims with FOR UPDATE SKIP LOCKED and a lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from typing import cast

from ccshortlink.core.records import OutboxSms, SubmittedSms
from ccshortlink.store.outbox import ClaimedSms, OutboxStore, _next_due, submitted_detail
from ccshortlink.store.pg.base import PgBase
from ccshortlink.store.pg.connection import PgConnection


class PgOutbox(PgBase, OutboxStore):
    """Each daemon claims due SMS no other daemon holds, for `lease` seconds at a time.

    A daemon renews the leases of the SMS it holds (submitting, or waiting in its SMSC link
    while the SMSC is down) every third of a lease; one that dies stops renewing, and once
    a lease has run out any daemon's next claim takes that SMS over. One that was only cut
    off may still have submitted it: a duplicate, bounded by its window, and the takeover
    is in the SMS's events (`trace`).
    """

    _owner = ""
    _renewer: asyncio.Task[None] | None = None
    # The SMS this daemon claimed and has not settled: only their leases are renewed, so an
    # SMS whose claim's answer was lost (the connection broke) is taken over after its lease.
    _held: set[int]

    async def _started(self) -> None:
        self._held = set()
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
            if not self._held:
                continue
            with contextlib.suppress(Exception):  # a fault: the next round tries again
                await self._write_statement(partial(
                    _renew, self._owner, time.time() + lease, sorted(self._held)))

    async def recover_interrupted(self, now: float) -> int:
        """Nothing at start: other daemons may be submitting; a dead one's leases run out."""
        return 0

    async def claim_due_sms(self, now: float, limit: int) -> ClaimedSms:
        lease_until = now + self.database.lease
        owner = self._owner

        def work(db: PgConnection) -> ClaimedSms:
            if limit <= 0:
                return ClaimedSms(sms=[], next_due_at=_next_due(cast(sqlite3.Connection, db)))
            # One statement: claim, takeovers' events, parts, and when the next SMS left in
            # the queue falls due (a row even when nothing was claimed).
            rows = db.execute(_CLAIM, (now, now, limit, now, owner, lease_until, now,
                                       owner)).fetchall()
            claimed = sorted((r for r in rows if r["id"] is not None),
                             key=lambda r: (r["not_before"], r["id"]))
            return ClaimedSms(sms=[OutboxSms(
                id=r["id"], destination=r["destination"], data_coding=r["data_coding"],
                esm_class=r["esm_class"], parts=tuple(bytes(p) for p in r["parts"]),
                attempts=r["attempts"], expires_at=r["expires_at"], code=r["code"])
                for r in claimed], next_due_at=rows[0]["next_due"])

        claimed = await self._write_statement(work)
        self._held.update(sms.id for sms in claimed.sms)
        return claimed

    async def mark_submitted_many(self, submitted: Sequence[SubmittedSms]) -> list[None]:
        """As OutboxStore's, one statement per SMS, all sent before the one wait."""
        params = [(s.at, s.sms_id, list(s.message_ids), s.sms_id, s.sms_id, s.at,
                   submitted_detail(s), s.sms_id, s.at) for s in submitted]
        await self._write_statement(lambda db: db.executemany(_SUBMITTED, params))
        self._held.difference_update(s.sms_id for s in submitted)
        return [None] * len(submitted)

    async def mark_failed(self, sms_id: int, now: float, *, status: str,
                          smpp_status: int | None, error: str) -> None:
        await super().mark_failed(sms_id, now, status=status, smpp_status=smpp_status,
                                  error=error)
        self._held.discard(sms_id)

    async def retry_later(self, sms_id: int, now: float, not_before: float, error: str) -> None:
        await super().retry_later(sms_id, now, not_before, error)
        self._held.discard(sms_id)

    def let_go(self, sms_id: int) -> None:
        """Its lease is no longer renewed: once it runs out, any daemon's claim takes it over."""
        self._held.discard(sms_id)


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
    " AS parts),"
    " t AS (INSERT INTO sms_events (sms_id, at, kind, detail) SELECT id, ?, 'requeued',"
    " 'the lease of ' || COALESCE(was_owner, 'another daemon') || ' ran out; taken over by ' || ?"
    " FROM c WHERE was = 'submitting')"
    " SELECT c.*, (SELECT MIN(not_before) FROM sms WHERE status = 'queued'"
    " AND id NOT IN (SELECT id FROM q)) AS next_due FROM (SELECT 1) AS one LEFT JOIN c ON true")


def _renew(owner: str, until: float, held: list[int], db: PgConnection) -> None:
    db.execute("UPDATE sms SET lease_until = ? WHERE lease_owner = ? AND status = 'submitting'"
               " AND id = ANY (?::bigint[])", (until, owner, held))


# The SMSC's message ids for one SMS (OutboxStore.mark_submitted_many's three). Each table is
# reached by its key: a statement joining the batch's arrays would be prepared, once, while
# the tables are new and small, with a plan that reads them whole, and keep it for hours.
_SUBMITTED = (
    "WITH s AS (UPDATE sms SET status = 'submitted', updated_at = ?::float8, smpp_status = 0"
    " WHERE id = ?::bigint),"
    " p AS (UPDATE sms_parts SET message_id = y.mid"
    " FROM unnest(?::text[]) WITH ORDINALITY AS y (mid, n)"
    " WHERE sms_parts.sms_id = ?::bigint AND sms_parts.part_no = y.n - 1),"
    " e AS (INSERT INTO sms_events (sms_id, at, kind, detail)"
    " SELECT ?::bigint, ?::float8, 'submitted', ?::text WHERE NOT EXISTS (SELECT 1"
    " FROM sms_events WHERE sms_id = ?::bigint AND kind = 'submitted' AND at = ?::float8))"
    " SELECT 1")
