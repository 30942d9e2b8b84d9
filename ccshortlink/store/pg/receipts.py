"""Delivery receipts applied on PostgreSQL with one wait for the server, whatever their number.

The shared code (store/outbox.py) waits for each receipt's lookup of its message id. Here each
receipt is one statement (the lookup in every form of the id, the SMS's new state and its
event, chained by a data-modifying WITH), all are sent, then the answers read at once. Any SQL
error rolls the batch back; PgBase._run then runs it again strict, through the shared code,
which keeps the error to its own receipt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from ccshortlink.core.records import ReceiptRecord
from ccshortlink.store.outbox import (
    FINAL_STATES,
    RECEIPT_CHANGES,
    apply_receipt,
    message_id_forms,
    receipt_detail,
)
from ccshortlink.store.pg.base import PgBase
from ccshortlink.store.pg.connection import PgConnection
from ccshortlink.store.transactions import each_in_savepoint

# The first form of the id that matches wins, as in outbox.apply_receipt.
_RECEIPT = (
    "WITH m AS (SELECT sms_id FROM sms_parts WHERE message_id = ANY (?::text[])"
    " ORDER BY array_position(?::text[], message_id) LIMIT 1),"
    " u AS (UPDATE sms SET status = ?::text, updated_at = ? WHERE ?::text IS NOT NULL"
    f" AND id = (SELECT sms_id FROM m) AND {RECEIPT_CHANGES}),"
    " e AS (INSERT INTO sms_events (sms_id, at, kind, detail)"
    " SELECT sms_id, ?, 'receipt', ? FROM m)"
    " SELECT sms_id FROM m")


class PgReceipts(PgBase):
    """record_receipts sent together; the shared per-receipt code when run again strict."""

    async def record_receipts(self, receipts: Sequence[ReceiptRecord]
                              ) -> list[int | None | Exception]:
        def work(db: sqlite3.Connection) -> list[int | None | Exception]:
            if cast(PgConnection, db).strict:
                return each_in_savepoint(db, apply_receipt, receipts)
            sent: list[Any] = []
            for receipt in receipts:
                try:  # a receipt the SMSC garbled is its own failure, as in the shared code
                    params = _params(receipt)
                except Exception as exc:
                    sent.append(exc)
                    continue
                sent.append(db.execute(_RECEIPT, params))
            # The first fetch waits for every answer.
            return [s if isinstance(s, Exception) else _sms_id(s.fetchone()) for s in sent]

        return await self._write(work)


def _sms_id(row: Any) -> int | None:
    return None if row is None else int(row[0])


def _params(r: ReceiptRecord) -> tuple[object, ...]:
    forms = message_id_forms(r.message_id)
    final = FINAL_STATES.get(r.state.upper())
    return (forms, forms, final, r.at, final, r.at, receipt_detail(r))
