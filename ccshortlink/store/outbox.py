"""SQL for the SMS outbox: claim, submit, retry, fail, receipts."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ccshortlink.core.records import OutboxSms, ReceiptRecord, SubmittedSms
from ccshortlink.store.base import StoreBase
from ccshortlink.store.rows import sms_event
from ccshortlink.store.transactions import each_in_savepoint


@dataclass(frozen=True)
class ClaimedSms:
    sms: list[OutboxSms]
    next_due_at: float | None  # the earliest not_before still queued, None when empty


class OutboxStore(StoreBase):
    """The durable outbox and what happened to each SMS."""

    # --- the outbox ----------------------------------------------------------------------

    async def recover_interrupted(self, now: float) -> int:
        """After a crash, SMS left mid-submit go back to the queue (at-least-once delivery)."""
        def work(db: sqlite3.Connection) -> int:
            count = db.execute(
                "UPDATE sms SET status = 'queued', updated_at = ? WHERE status = 'submitting'",
                (now,)).rowcount
            if count:
                db.execute(
                    "INSERT INTO sms_events (sms_id, at, kind, detail)"
                    " SELECT id, ?, 'requeued', 'interrupted by a restart'"
                    " FROM sms WHERE status = 'queued' AND updated_at = ?",
                    (now, now))
            return count

        return await self._write(work)

    async def claim_due_sms(self, now: float, limit: int) -> ClaimedSms:
        """Due SMS marked submitting, and when the next one left in the queue falls due."""
        def work(db: sqlite3.Connection) -> ClaimedSms:
            rows = db.execute(
                "SELECT s.id, s.destination, s.data_coding, s.esm_class, s.attempts, s.expires_at,"
                " COALESCE(l.code, '') AS code FROM sms s LEFT JOIN links l ON l.id = s.link_id"
                " WHERE s.status = 'queued' AND s.not_before <= ? ORDER BY s.not_before, s.id"
                " LIMIT ?", (now, limit)).fetchall() if limit > 0 else []
            ids = [row["id"] for row in rows]
            marks = ",".join("?" * len(ids))
            parts: dict[int, list[bytes]] = {}
            if ids:
                for sms_id, payload in db.execute(
                        f"SELECT sms_id, payload FROM sms_parts WHERE sms_id IN ({marks})"
                        " ORDER BY sms_id, part_no", ids):
                    parts.setdefault(sms_id, []).append(bytes(payload))
                db.execute(f"UPDATE sms SET status = 'submitting', attempts = attempts + 1,"
                           f" updated_at = ? WHERE id IN ({marks})", (now, *ids))
            # Asked in the same hop: the outbox sleeps until then when nothing else wakes it.
            next_due = _next_due(db)
            return ClaimedSms(sms=[OutboxSms(
                id=row["id"], destination=row["destination"], data_coding=row["data_coding"],
                esm_class=row["esm_class"], parts=tuple(parts.get(row["id"], ())),
                attempts=row["attempts"] + 1, expires_at=row["expires_at"], code=row["code"])
                for row in rows], next_due_at=next_due)

        return await self._write(work)

    async def next_due_at(self) -> float | None:
        return await self._read(_next_due)

    async def mark_submitted(self, sms_id: int, message_ids: Sequence[str], now: float) -> None:
        await self.mark_submitted_many([SubmittedSms(sms_id, tuple(message_ids), now)])

    async def mark_submitted_many(self, submitted: Sequence[SubmittedSms]) -> list[None]:
        """The SMSC's message ids for SMS it accepted, a batch in one transaction."""
        def work(db: sqlite3.Connection) -> list[None]:
            db.executemany("UPDATE sms SET status = 'submitted', updated_at = ?, smpp_status = 0"
                           " WHERE id = ?", [(s.at, s.sms_id) for s in submitted])
            db.executemany(
                "UPDATE sms_parts SET message_id = ? WHERE sms_id = ? AND part_no = ?",
                [(mid, s.sms_id, i) for s in submitted for i, mid in enumerate(s.message_ids)])
            db.executemany(
                "INSERT INTO sms_events (sms_id, at, kind, detail) VALUES (?, ?, 'submitted', ?)",
                [(s.sms_id, s.at, submitted_detail(s)) for s in submitted])
            return [None] * len(submitted)

        return await self._write(work)

    async def mark_failed(self, sms_id: int, now: float, *, status: str, smpp_status: int | None,
                          error: str) -> None:
        """Terminal: `status` is failed or expired."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = ?, smpp_status = ?, error = ?, updated_at = ?"
                       " WHERE id = ?", (status, smpp_status, error, now, sms_id))
            sms_event(db, sms_id, now, status, error)

        await self._write(work)

    async def retry_later(self, sms_id: int, now: float, not_before: float, error: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            # Only while being sent: an SMS already settled (submitted, failed, taken over and
            # sent by another daemon) is never queued again.
            if db.execute("UPDATE sms SET status = 'queued', not_before = ?, error = ?,"
                          " updated_at = ? WHERE id = ? AND status = 'submitting'",
                          (not_before, error, now, sms_id)).rowcount:
                sms_event(db, sms_id, now, "retry", f"{error}; next try at {not_before:.0f}")

        await self._write(work)

    def let_go(self, sms_id: int) -> None:
        """Nothing holds it but its 'submitting' row: one daemon per file, and the next start
        sends it again."""

    async def record_receipt(self, message_id: str, state: str, error_code: str,
                             now: float) -> int | None:
        """Apply a delivery receipt; returns the SMS id, or None for an unknown message id."""
        [sms_id] = await self.record_receipts([ReceiptRecord(message_id, state, error_code, now)])
        if isinstance(sms_id, Exception):
            raise sms_id
        return sms_id

    async def record_receipts(self, receipts: Sequence[ReceiptRecord]
                              ) -> list[int | None | Exception]:
        """Apply delivery receipts in one transaction: the SMS id of each, None if unknown,
        or the error that one receipt alone ran into (rolled back to its savepoint)."""
        return await self._write(lambda db: each_in_savepoint(db, apply_receipt, receipts))

    async def sms_status_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) FROM sms GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}


def _next_due(db: sqlite3.Connection) -> float | None:
    """When the earliest SMS still queued falls due; None when the queue is empty."""
    due: float | None = db.execute(
        "SELECT MIN(not_before) FROM sms WHERE status = 'queued'").fetchone()[0]
    return due


FINAL_STATES = {"DELIVRD": "delivered", "UNDELIV": "failed", "EXPIRED": "expired",
                "REJECTD": "failed", "DELETED": "failed"}
# What a final receipt may still change: an SMS failed, expired or cancelled stays so.
RECEIPT_CHANGES = "status IN ('submitted', 'submitting', 'delivered')"


def apply_receipt(db: sqlite3.Connection, receipt: ReceiptRecord) -> int | None:
    row = None
    for candidate in message_id_forms(receipt.message_id):
        row = db.execute(
            "SELECT sms_id FROM sms_parts WHERE message_id = ?", (candidate,)).fetchone()
        if row is not None:
            break
    if row is None:
        return None
    sms_id = int(row[0])
    final = FINAL_STATES.get(receipt.state.upper())
    if final is not None:
        db.execute(
            f"UPDATE sms SET status = ?, updated_at = ? WHERE id = ? AND {RECEIPT_CHANGES}",
            (final, receipt.at, sms_id))
    sms_event(db, sms_id, receipt.at, "receipt", receipt_detail(receipt))
    return sms_id


def submitted_detail(submitted: SubmittedSms) -> str:
    """What an SMS's `submitted` event says."""
    return "message ids " + ",".join(submitted.message_ids)


def receipt_detail(receipt: ReceiptRecord) -> str:
    """What a receipt's event says."""
    return f"{receipt.message_id} {receipt.state} err:{receipt.error_code}"


def message_id_forms(message_id: str) -> list[str]:
    """The id as given, then as hex or decimal: many SMSCs answer submit_sm with a hex id but
    write the receipt text's id in decimal (SMPP 3.4 appendix B leaves it open)."""
    text = message_id.strip()
    forms = [message_id, text.lower(), text.upper()]
    if text.isascii() and text.isdecimal():  # not "1²": str.isdigit says yes, int() no
        forms += [format(int(text), "x"), format(int(text), "X")]
    with contextlib.suppress(ValueError):  # not hexadecimal either: the forms above will do
        forms.append(str(int(text, 16)))
    return list(dict.fromkeys(forms))
