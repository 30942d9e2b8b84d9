"""SQL for customers' replies: recorded, the do-not-send list changed, one answer queued."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ccshortlink.core.records import ReplyRecord, ReplyResult, SmsDraft
from ccshortlink.core.replywords import AUTO_REPLY_KINDS
from ccshortlink.core.vocab import ReplyKind, SmsKind
from ccshortlink.store.base import StoreBase
from ccshortlink.store.rows import cancel_unsent_to_opted_out, lock_customer, queue_sms

_AUTO = tuple(sorted(AUTO_REPLY_KINDS))


class ReplyRows(StoreBase):
    """One transaction per reply, so a storm of replies from one number gets one answer."""

    async def record_reply(self, reply: ReplyRecord, answer: SmsDraft | None,
                           answer_kind: SmsKind | None,
                           may_answer: Callable[[float | None], bool]) -> ReplyResult:
        """Store the reply, apply an opt-out or opt-in, and queue `answer` unless `may_answer`,
        given when the number was last answered, says no."""
        return await self._write(lambda db: _record_reply(
            db, reply, answer, answer_kind or SmsKind.CARD, may_answer))


def _last_answer(db: sqlite3.Connection, customer_number: str) -> float | None:
    marks = ", ".join("?" * len(_AUTO))
    at: float | None = db.execute(
        f"SELECT MAX(created_at) FROM sms WHERE destination = ? AND kind IN ({marks})",
        (customer_number, *_AUTO)).fetchone()[0]
    return at


def _record_reply(db: sqlite3.Connection, reply: ReplyRecord, answer: SmsDraft | None,
                  kind: SmsKind, may_answer: Callable[[float | None], bool]) -> ReplyResult:
    number, now = reply.customer_number, reply.received_at
    lock_customer(db, number)  # a storm of replies from one number gets one answer
    changed = False
    if reply.kind == ReplyKind.OPT_OUT:
        changed = db.execute(
            "INSERT INTO opt_outs (customer_number, source, at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (number, "sms reply", now)).rowcount > 0
        cancel_unsent_to_opted_out(db, number, "sms reply", now)
    elif reply.kind == ReplyKind.OPT_IN:
        changed = db.execute("DELETE FROM opt_outs WHERE customer_number = ?",
                             (number,)).rowcount > 0
    sms_id, why_not = None, ""
    if answer is None:
        why_not = "" if reply.kind == ReplyKind.OTHER else "no text for this answer"
    elif not may_answer(_last_answer(db, number)):
        why_not = "answered within the hour already"
    else:
        sms_id = queue_sms(db, None, kind, number, answer, now, note=kind)
    db.execute("INSERT INTO replies (customer_number, text, kind, answer, sms_id, received_at)"
               " VALUES (?, ?, ?, ?, ?, ?)",
               (number, reply.text, reply.kind, why_not, sms_id, now))
    return ReplyResult(changed=changed, sms_id=sms_id, not_answered=why_not)
