"""SQL for the SMS outbox: claim, submit, retry, fail, receipts."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ccshortlink.store.base import OutboxSms, StoreBase, _event, _message_id_forms


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
                    "INSERT INTO sms_events (sms_id, at, kind, detail) SELECT id, ?, 'requeued',"
                    " 'interrupted by a restart' FROM sms WHERE status = 'queued' AND updated_at = ?",
                    (now, now))
            return count

        return await self._write(work)

    async def claim_due_sms(self, now: float, limit: int) -> list[OutboxSms]:
        def work(db: sqlite3.Connection) -> list[OutboxSms]:
            rows = db.execute(
                "SELECT s.id, s.destination, s.data_coding, s.esm_class, s.attempts, s.expires_at,"
                " l.code FROM sms s JOIN links l ON l.id = s.link_id"
                " WHERE s.status = 'queued' AND s.not_before <= ? ORDER BY s.not_before, s.id"
                " LIMIT ?", (now, limit)).fetchall()
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            marks = ",".join("?" * len(ids))
            parts: dict[int, list[bytes]] = {}
            for sms_id, payload in db.execute(
                    f"SELECT sms_id, payload FROM sms_parts WHERE sms_id IN ({marks})"
                    " ORDER BY sms_id, part_no", ids):
                parts.setdefault(sms_id, []).append(bytes(payload))
            db.execute(f"UPDATE sms SET status = 'submitting', attempts = attempts + 1,"
                       f" updated_at = ? WHERE id IN ({marks})", (now, *ids))
            return [OutboxSms(
                id=row["id"], destination=row["destination"], data_coding=row["data_coding"],
                esm_class=row["esm_class"], parts=tuple(parts.get(row["id"], ())),
                attempts=row["attempts"] + 1, expires_at=row["expires_at"], code=row["code"])
                for row in rows]

        return await self._write(work)

    async def next_due_at(self) -> float | None:
        row = await self._one("SELECT MIN(not_before) FROM sms WHERE status = 'queued'")
        return None if row is None else row[0]

    async def mark_submitted(self, sms_id: int, message_ids: Sequence[str], now: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = 'submitted', updated_at = ?, smpp_status = 0"
                       " WHERE id = ?", (now, sms_id))
            db.executemany(
                "UPDATE sms_parts SET message_id = ? WHERE sms_id = ? AND part_no = ?",
                [(mid, sms_id, i) for i, mid in enumerate(message_ids)])
            _event(db, sms_id, now, "submitted", "message ids " + ",".join(message_ids))

        await self._write(work)

    async def mark_failed(self, sms_id: int, now: float, *, status: str, smpp_status: int | None,
                          error: str) -> None:
        """Terminal: `status` is failed or expired."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = ?, smpp_status = ?, error = ?, updated_at = ?"
                       " WHERE id = ?", (status, smpp_status, error, now, sms_id))
            _event(db, sms_id, now, status, error)

        await self._write(work)

    async def retry_later(self, sms_id: int, now: float, not_before: float, error: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sms SET status = 'queued', not_before = ?, error = ?,"
                       " updated_at = ? WHERE id = ?", (not_before, error, now, sms_id))
            _event(db, sms_id, now, "retry", f"{error}; next try at {not_before:.0f}")

        await self._write(work)

    async def record_receipt(self, message_id: str, state: str, error_code: str,
                             now: float) -> int | None:
        """Apply a delivery receipt; returns the SMS id, or None for an unknown message id."""
        final = {"DELIVRD": "delivered", "UNDELIV": "failed", "EXPIRED": "expired",
                 "REJECTD": "failed", "DELETED": "failed"}.get(state.upper())

        def work(db: sqlite3.Connection) -> int | None:
            row = None
            for candidate in _message_id_forms(message_id):
                row = db.execute(
                    "SELECT sms_id FROM sms_parts WHERE message_id = ?", (candidate,)).fetchone()
                if row is not None:
                    break
            if row is None:
                return None
            sms_id = int(row[0])
            if final is not None:
                db.execute(
                    "UPDATE sms SET status = ?, updated_at = ? WHERE id = ? AND status IN"
                    " ('submitted', 'submitting', 'delivered')", (final, now, sms_id))
            _event(db, sms_id, now, "receipt", f"{message_id} {state} err:{error_code}")
            return sms_id

        return await self._write(work)

    async def sms_status_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) FROM sms GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}
