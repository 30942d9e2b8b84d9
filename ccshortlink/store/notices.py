"""SQL for the missed-call SMS: its facts, and queueing it with no link beside its decision."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from ccshortlink.core.policy import SendFacts
from ccshortlink.core.records import CardRequest, CardResult
from ccshortlink.core.vocab import DecisionOutcome, SmsKind, Trigger, Verdict
from ccshortlink.store.rows import insert_decision, queue_sms


def decide_missed_call(db: sqlite3.Connection, request: CardRequest, now: float) -> CardResult:
    """Judge one missed call on the number's facts; queue its SMS (link_id NULL) when sent."""
    record = request.record
    assert request.judge is not None and request.draft is not None
    decision = request.judge(_missed_call_facts(db, record.customer_number, request.pair_since,
                                                request.day_start))
    reason = "; ".join(r for r in (record.reason, decision.reason) if r)
    if decision.outcome == Verdict.SKIP:
        record = replace(record, outcome=DecisionOutcome.SKIPPED, reason=reason)
        insert_decision(db, record, now, None, None)
        return CardResult(record=record, issued=None)
    sent = decision.outcome == Verdict.SEND
    record = replace(record, outcome=DecisionOutcome.SENT if sent else DecisionOutcome.DEFERRED,
                     reason=reason)
    sms_id = queue_sms(db, None, SmsKind.MISSED_CALL, record.customer_number,
                       request.draft("", decision.not_before), now, note="missed call")
    insert_decision(db, record, now, None, sms_id)
    return CardResult(record=record, issued=None, sms_id=sms_id)


def _missed_call_facts(db: sqlite3.Connection, customer_number: str, since: float,
                       day_start: float) -> SendFacts:
    """As for a card, but the "last SMS" is the last missed-call SMS to this number."""
    opted = db.execute("SELECT 1 FROM opt_outs WHERE customer_number = ?",
                       (customer_number,)).fetchone()
    last = db.execute(
        "SELECT MAX(d.decided_at) FROM decisions d JOIN sms s ON s.id = d.sms_id"
        " WHERE d.customer_number = ? AND d.trigger = ? AND d.link_id IS NULL"
        " AND d.decided_at >= ? AND s.status NOT IN ('failed', 'expired')",
        (customer_number, Trigger.NOT_ANSWERED, since)).fetchone()
    today = db.execute(
        "SELECT COUNT(*) FROM sms WHERE destination = ? AND created_at >= ?"
        " AND status NOT IN ('failed', 'expired')", (customer_number, day_start)).fetchone()
    return SendFacts(opted_out=opted is not None, last_pair_sms_at=last[0],
                     sms_since_day_start=int(today[0]))
